#include "data/tokenizer/added_vocabulary.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/utf8.hpp"

namespace medgpt::data {

namespace {

// Rust's char::is_whitespace (Unicode White_Space).
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Start of the code point that ends at byte `end` (exclusive).
std::size_t prev_char(std::string_view s, std::size_t end) {
  std::size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool is_word_char(char32_t c) {
  // Alphanumeric in the ASCII range, letters/digits beyond it approximated by "not space, not
  // punctuation": single_word tokens are rare (none in Qwen or Llama-3).
  if (c < 0x80) return std::isalnum(static_cast<int>(c)) || c == '_';
  return !is_white_space(c);
}

}  // namespace

AddedVocabulary AddedVocabulary::from_json(const nlohmann::json& added_tokens, const std::string& where) {
  AddedVocabulary v;
  if (added_tokens.is_null()) return v;
  if (!added_tokens.is_array()) util::fail(where, "added_tokens is not an array", "fix tokenizer.json");
  std::size_t k = 0;
  for (const auto& t : added_tokens) {
    const std::string at = "added_tokens[" + std::to_string(k++) + "]";
    if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["id"].is_number_integer() ||
        !t["content"].is_string())
      util::fail(where, at + ": needs integer \"id\" and string \"content\"", "fix tokenizer.json");
    AddedToken a;
    a.id = t["id"].get<TokenId>();
    a.content = t["content"].get<std::string>();
    a.special = t.value("special", false);
    a.single_word = t.value("single_word", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.normalized = t.value("normalized", !a.special);
    if (a.content.empty()) util::fail(where, at + ": content is empty", "fix tokenizer.json");
    v.tokens_.push_back(std::move(a));
  }
  v.reindex();
  return v;
}

void AddedVocabulary::add(AddedToken t) {
  tokens_.push_back(std::move(t));
  reindex();
}

void AddedVocabulary::assign_ids_like_hf(const Bpe& model) {
  const auto vocab_size = static_cast<TokenId>(model.vocab_size());
  std::unordered_map<std::string, TokenId> assigned;
  TokenId max_id = -1;
  for (auto& t : tokens_) {
    if (auto it = assigned.find(t.content); it != assigned.end()) {
      t.id = it->second;
      continue;
    }
    const TokenId in_model = model.id(t.content);
    t.id = in_model >= 0 ? in_model : (max_id >= vocab_size ? max_id + 1 : vocab_size);
    max_id = std::max(max_id, t.id);
    assigned.emplace(t.content, t.id);
  }
  reindex();
}

void AddedVocabulary::reindex() {
  by_id_.clear();
  by_content_.clear();
  special_contents_.clear();
  by_first_byte_[0].clear();
  by_first_byte_[1].clear();
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const auto& t = tokens_[i];
    by_id_[t.id] = i;
    by_content_[t.content] = t.id;
    if (t.special) special_contents_.insert(t.content);
    // Special tokens are always matched on raw text, whatever their normalized flag says.
    by_first_byte_[t.normalized && !t.special ? 1 : 0][static_cast<unsigned char>(t.content[0])].push_back(i);
  }
  for (auto& m : by_first_byte_)
    for (auto& [b, list] : m)
      std::stable_sort(list.begin(), list.end(),
                       [&](std::size_t a, std::size_t c) { return tokens_[a].content.size() > tokens_[c].content.size(); });
}

const AddedToken* AddedVocabulary::find(TokenId id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

TokenId AddedVocabulary::id_of(const std::string& content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? -1 : it->second;
}

void AddedVocabulary::split(std::string_view s, bool normalized_pass, std::vector<Segment>& out) const {
  const auto& index = by_first_byte_[normalized_pass ? 1 : 0];
  if (index.empty()) {
    if (!s.empty()) out.push_back({s, -1});
    return;
  }
  bool first_byte[256] = {};
  for (const auto& [b, list] : index) first_byte[b] = true;

  std::size_t emitted = 0;  // end of the last segment pushed
  std::size_t i = 0;
  while (i < s.size()) {
    if (!first_byte[static_cast<unsigned char>(s[i])]) {
      ++i;
      continue;
    }
    const AddedToken* hit = nullptr;
    for (std::size_t k : index.at(static_cast<unsigned char>(s[i]))) {
      const auto& t = tokens_[k];
      if (s.compare(i, t.content.size(), t.content) != 0) continue;
      if (t.single_word) {
        std::size_t len;
        const bool start_ok = i == 0 || !is_word_char(util::utf8_decode(s, prev_char(s, i), len));
        const std::size_t e = i + t.content.size();
        const bool stop_ok = e == s.size() || !is_word_char(util::utf8_decode(s, e, len));
        if (!start_ok || !stop_ok) continue;
      }
      hit = &t;
      break;  // longest first
    }
    if (!hit) {
      ++i;
      continue;
    }
    std::size_t start = i, stop = i + hit->content.size();
    if (hit->lstrip) {
      while (start > emitted) {
        const std::size_t p = prev_char(s, start);
        std::size_t len;
        if (!is_white_space(util::utf8_decode(s, p, len))) break;
        start = p;
      }
    }
    if (hit->rstrip) {
      while (stop < s.size()) {
        std::size_t len;
        if (!is_white_space(util::utf8_decode(s, stop, len))) break;
        stop += len;
      }
    }
    if (start > emitted) out.push_back({s.substr(emitted, start - emitted), -1});
    out.push_back({s.substr(start, stop - start), hit->id});
    emitted = i = stop;
  }
  if (emitted < s.size()) out.push_back({s.substr(emitted), -1});
}

nlohmann::ordered_json AddedVocabulary::to_json() const {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  std::vector<const AddedToken*> sorted;
  for (const auto& t : tokens_) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->id < b->id; });
  for (const auto* t : sorted) {
    nlohmann::ordered_json o;
    o["id"] = t->id;
    o["content"] = t->content;
    o["single_word"] = t->single_word;
    o["lstrip"] = t->lstrip;
    o["rstrip"] = t->rstrip;
    o["normalized"] = t->normalized;
    o["special"] = t->special;
    arr.push_back(std::move(o));
  }
  return arr;
}

}  // namespace medgpt::data
