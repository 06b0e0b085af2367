#include "data/tokenizer/bpe.hpp"

#include <atomic>
#include <nlohmann/json.hpp>
#include <queue>

#include "data/tokenizer/byte_level.hpp"
#include "util/error.hpp"

namespace medgpt::data {

namespace {

std::uint64_t pair_key(TokenId a, TokenId b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

std::atomic<std::uint64_t> next_serial{1};

// Per-thread word cache: pre-tokens repeat a lot (Zipf), so most words skip the merge loop.
struct WordCache {
  std::uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<TokenId>> words;
};
constexpr std::size_t kCacheCapacity = 1 << 20;
constexpr std::size_t kCacheMaxWordBytes = 256;

}  // namespace

Bpe Bpe::from_json(const nlohmann::json& model, const std::string& where) {
  const std::string type = model.value("type", "BPE");
  if (type != "BPE")
    util::fail(where, "model.type is \"" + type + "\"", "medgpt reads byte-level BPE tokenizers (Qwen, Llama-3, GPT-2)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      util::fail(where, std::string("model.") + key + " is set", "medgpt supports byte-level BPE without subword affixes");
  }
  if (model.value("byte_fallback", false))
    util::fail(where, "model.byte_fallback is true", "medgpt supports byte-level BPE (byte_fallback false)");
  if (!model.contains("vocab") || !model["vocab"].is_object())
    util::fail(where, "model.vocab is missing or not an object", "use a Hugging Face tokenizer.json");
  std::vector<std::pair<std::string, TokenId>> vocab;
  vocab.reserve(model["vocab"].size());
  for (const auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
      util::fail(where, "model.vocab[\"" + tok + "\"]: id is not a non-negative integer", "fix tokenizer.json");
    vocab.emplace_back(tok, id.get<TokenId>());
  }
  std::vector<std::pair<std::string, std::string>> merges;
  if (model.contains("merges")) {
    const auto& m = model["merges"];
    merges.reserve(m.size());
    std::size_t k = 0;
    for (const auto& e : m) {
      const std::string at = "model.merges[" + std::to_string(k++) + "]";
      if (e.is_string()) {
        // Legacy form "a b": exactly one separating space.
        const std::string s = e.get<std::string>();
        if (s.rfind("#version", 0) == 0) continue;
        const auto sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          util::fail(where, at + ": \"" + s + "\" is not two tokens separated by one space", "fix tokenizer.json");
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        util::fail(where, at + ": expected \"a b\" or [\"a\", \"b\"]", "fix tokenizer.json");
      }
    }
  }
  return from_parts(std::move(vocab), std::move(merges), model.value("ignore_merges", false), where);
}

Bpe Bpe::from_parts(std::vector<std::pair<std::string, TokenId>> vocab,
                    std::vector<std::pair<std::string, std::string>> merges, bool ignore_merges,
                    const std::string& where) {
  Bpe b;
  b.ignore_merges_ = ignore_merges;
  b.merges_ = std::move(merges);
  TokenId max_id = -1;
  for (const auto& [tok, id] : vocab) max_id = std::max(max_id, id);
  b.id_to_token_.assign(static_cast<std::size_t>(max_id + 1), std::string());
  b.vocab_.reserve(vocab.size());
  for (auto& [tok, id] : vocab) {
    b.vocab_[tok] = id;
    b.id_to_token_[static_cast<std::size_t>(id)] = tok;
  }
  b.index(where);
  return b;
}

void Bpe::index(const std::string& where) {
  serial_ = next_serial++;
  const ByteLevel& bl = ByteLevel::get();
  for (int c = 0; c < 256; ++c) byte_id_[c] = id(bl.char_of(static_cast<unsigned char>(c)));
  merge_of_.clear();
  merge_of_.reserve(merges_.size() * 2);
  for (std::size_t r = 0; r < merges_.size(); ++r) {
    const auto& [a, b] = merges_[r];
    const TokenId ia = id(a), ib = id(b), im = id(a + b);
    const std::string at = "model.merges[" + std::to_string(r) + "]";
    if (ia < 0) util::fail(where, at + ": token \"" + a + "\" is not in model.vocab", "fix tokenizer.json");
    if (ib < 0) util::fail(where, at + ": token \"" + b + "\" is not in model.vocab", "fix tokenizer.json");
    if (im < 0) util::fail(where, at + ": merged token \"" + a + b + "\" is not in model.vocab", "fix tokenizer.json");
    // A repeated pair keeps the later rank, as the reference's HashMap collect does.
    merge_of_[pair_key(ia, ib)] = MergeInfo{static_cast<std::int32_t>(r), im};
  }
  raw_vocab_.clear();
  if (ignore_merges_) {
    raw_vocab_.reserve(vocab_.size());
    for (const auto& [tok, i] : vocab_)
      if (auto raw = bl.decode(tok)) raw_vocab_.emplace(std::move(*raw), i);
  }
}

const std::string& Bpe::token(TokenId id) const {
  static const std::string empty;
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return empty;
  return id_to_token_[static_cast<std::size_t>(id)];
}

TokenId Bpe::id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::vector<std::pair<TokenId, std::string>> Bpe::vocab_by_id() const {
  std::vector<std::pair<TokenId, std::string>> out;
  out.reserve(vocab_.size());
  for (std::size_t i = 0; i < id_to_token_.size(); ++i)
    if (!id_to_token_[i].empty()) out.emplace_back(static_cast<TokenId>(i), id_to_token_[i]);
  return out;
}

std::vector<TokenId> Bpe::merge_bytes(std::string_view raw) const {
  // Symbols form a doubly linked list over the word; a merge folds the right symbol into the left.
  struct Symbol {
    TokenId id;
    std::int32_t prev, next;
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(raw.size());
  for (unsigned char c : raw) {
    const TokenId t = byte_id_[c];
    if (t < 0) continue;  // a byte missing from the vocabulary is dropped (no unk token)
    const auto n = static_cast<std::int32_t>(sym.size());
    sym.push_back({t, n - 1, n + 1, true});
  }
  if (sym.empty()) return {};
  sym.back().next = -1;

  struct Cand {
    std::int32_t rank, pos;
    TokenId merged;
    bool operator<(const Cand& o) const {  // priority_queue pops the largest: invert
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Cand> storage;
  storage.reserve(sym.size());
  std::priority_queue<Cand> heap(std::less<Cand>(), std::move(storage));
  auto push = [&](std::int32_t pos) {
    const std::int32_t nx = sym[static_cast<std::size_t>(pos)].next;
    if (nx < 0) return;
    auto it = merge_of_.find(pair_key(sym[static_cast<std::size_t>(pos)].id, sym[static_cast<std::size_t>(nx)].id));
    if (it != merge_of_.end()) heap.push({it->second.rank, pos, it->second.merged});
  };
  for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(sym.size()); ++i) push(i);

  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Symbol& left = sym[static_cast<std::size_t>(c.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[static_cast<std::size_t>(left.next)];
    auto it = merge_of_.find(pair_key(left.id, right.id));
    if (it == merge_of_.end() || it->second.merged != c.merged) continue;  // stale entry
    left.id = c.merged;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) sym[static_cast<std::size_t>(left.next)].prev = c.pos;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  std::vector<TokenId> out;
  for (std::int32_t i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) out.push_back(sym[static_cast<std::size_t>(i)].id);
  return out;
}

void Bpe::encode_word(std::string_view raw, std::vector<TokenId>& out) const {
  if (raw.empty()) return;
  if (raw.size() == 1 && byte_id_[static_cast<unsigned char>(raw[0])] >= 0) {
    out.push_back(byte_id_[static_cast<unsigned char>(raw[0])]);
    return;
  }
  if (ignore_merges_) {
    auto it = raw_vocab_.find(std::string(raw));
    if (it != raw_vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local WordCache cache;
  if (cache.owner != serial_) {
    cache.words.clear();
    cache.owner = serial_;
  }
  const bool cacheable = raw.size() <= kCacheMaxWordBytes;
  std::string key;
  if (cacheable) {
    key.assign(raw);
    auto it = cache.words.find(key);
    if (it != cache.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<TokenId> ids = merge_bytes(raw);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    if (cache.words.size() >= kCacheCapacity) cache.words.clear();
    cache.words.emplace(std::move(key), std::move(ids));
  }
}

nlohmann::ordered_json Bpe::to_json() const {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  // Append to the object's vector directly: keys are unique, and ordered_map's own insert is a
  // linear search (quadratic over a 150k vocabulary).
  auto& entries = static_cast<nlohmann::ordered_json::object_t::Container&>(vocab.get_ref<nlohmann::ordered_json::object_t&>());
  const auto by_id = vocab_by_id();
  entries.reserve(by_id.size());
  for (const auto& [i, tok] : by_id) entries.emplace_back(tok, i);
  nlohmann::ordered_json merges = nlohmann::ordered_json::array();
  for (const auto& [a, b] : merges_) merges.push_back({a, b});
  nlohmann::ordered_json m;
  m["type"] = "BPE";
  m["dropout"] = nullptr;
  m["unk_token"] = nullptr;
  m["continuing_subword_prefix"] = "";
  m["end_of_word_suffix"] = "";
  m["fuse_unk"] = false;
  m["byte_fallback"] = false;
  m["ignore_merges"] = ignore_merges_;
  m["vocab"] = std::move(vocab);
  m["merges"] = std::move(merges);
  return m;
}

}  // namespace medgpt::data
