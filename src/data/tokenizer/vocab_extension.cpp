#include "data/tokenizer/vocab_extension.hpp"

#include <unordered_map>
#include <unordered_set>

namespace medgpt::data {

namespace {

// Accumulates the appended tokens and merges on top of a base tokenizer.
class Extender {
 public:
  explicit Extender(const Tokenizer& base) : base_(base), next_id_(base.max_id() + 1) {
    for (const auto& [a, b] : base.model().merges()) merges_.insert(a + " " + b);
  }

  bool known(const std::string& tok) const { return base_.model().id(tok) >= 0 || new_ids_.count(tok); }
  std::size_t added_tokens() const { return new_tokens_.size(); }

  // Adds the merge a + b (and the token it makes, if new). Returns false when it adds nothing.
  bool add_merge(const std::string& a, const std::string& b) {
    if (!known(a) || !known(b)) return false;
    if (!merges_.insert(a + " " + b).second) return false;
    new_merges_.emplace_back(a, b);
    const std::string ab = a + b;
    if (!known(ab)) {
      new_ids_.emplace(ab, next_id_);
      new_tokens_.emplace_back(ab, next_id_++);
    }
    return true;
  }

  Extension finish() {
    std::vector<std::pair<std::string, TokenId>> vocab;
    for (const auto& [id, tok] : base_.model().vocab_by_id()) vocab.emplace_back(tok, id);
    // The base's added tokens join the model vocabulary under their ids. Hugging Face gives added
    // tokens missing from the model new ids after the model vocabulary, which the appended tokens
    // would otherwise shift; listed in the model they keep their ids (as GPT-2's <|endoftext|> does).
    // Encoding is unchanged: added tokens are cut out of the text before the model runs.
    for (const auto& t : base_.added().tokens())
      if (base_.model().token(t.id).empty() && base_.model().id(t.content) < 0) vocab.emplace_back(t.content, t.id);
    vocab.insert(vocab.end(), new_tokens_.begin(), new_tokens_.end());
    auto merges = base_.model().merges();
    merges.insert(merges.end(), new_merges_.begin(), new_merges_.end());
    Bpe model = Bpe::from_parts(std::move(vocab), std::move(merges), base_.model().ignore_merges(), "tokenizer extend");
    Extension e{Tokenizer::from_parts(std::move(model), base_.added(), base_.normalizer(), base_.pre_tokenizer().clone(),
                                      base_.config(), base_.post_processor()),
                new_tokens_.size(), new_merges_.size()};
    return e;
  }

 private:
  const Tokenizer& base_;
  TokenId next_id_;
  std::unordered_set<std::string> merges_;
  std::unordered_map<std::string, TokenId> new_ids_;
  std::vector<std::pair<std::string, TokenId>> new_tokens_;
  std::vector<std::pair<std::string, std::string>> new_merges_;
};

}  // namespace

Extension extend_with_tokenizer(const Tokenizer& base, const Tokenizer& domain, std::size_t max_new_tokens) {
  Extender x(base);
  for (const auto& [a, b] : domain.model().merges()) {
    if (max_new_tokens && x.added_tokens() >= max_new_tokens) break;
    x.add_merge(a, b);
  }
  return x.finish();
}

Extension extend_with_words(const Tokenizer& base, const std::vector<std::string>& words) {
  Extender x(base);
  std::vector<std::string_view> pieces;
  std::vector<TokenId> ids;
  for (const auto& w : words) {
    const std::string normalized = base.normalizer().apply(w);
    pieces.clear();
    base.pre_tokenizer().split(normalized, pieces);
    for (auto piece : pieces) {
      ids.clear();
      base.model().encode_word(piece, ids);
      if (ids.size() < 2) continue;
      std::string cur = base.model().token(ids[0]);
      for (std::size_t i = 1; i < ids.size(); ++i) {
        const std::string& next = base.model().token(ids[i]);
        x.add_merge(cur, next);
        cur += next;
      }
    }
  }
  return x.finish();
}

}  // namespace medgpt::data
