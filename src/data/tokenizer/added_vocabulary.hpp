// tokenizer.json "added_tokens": special and normal tokens that are cut out of the text before the
// model sees it (leftmost-longest match, with the single_word / lstrip / rstrip rules of Hugging Face
// tokenizers' AddedVocabulary).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "data/tokenizer/bpe.hpp"

namespace medgpt::data {

struct AddedToken {
  TokenId id = -1;
  std::string content;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A piece of text: either an added token (id >= 0) or text for the model (id == -1).
struct Segment {
  std::string_view text;
  TokenId id;
};

class AddedVocabulary {
 public:
  static AddedVocabulary from_json(const nlohmann::json& added_tokens, const std::string& where);
  void add(AddedToken t);
  // Re-derives the ids as Hugging Face does when it loads added_tokens (in file order): a token
  // whose content is a model token takes the model's id; any other takes the model vocabulary's
  // size, or one past the largest added id once that is beyond it. For well-formed files (Qwen,
  // Llama-3, ours) this keeps every id as written.
  void assign_ids_like_hf(const Bpe& model);

  // Splits s into added-token matches and the text between them. `normalized_pass` selects the
  // tokens with normalized=true (matched on normalized text) instead of the raw-text ones.
  void split(std::string_view s, bool normalized_pass, std::vector<Segment>& out) const;
  bool has_normalized() const { return !by_first_byte_[1].empty(); }

  const AddedToken* find(TokenId id) const;
  TokenId id_of(const std::string& content) const;
  // True when `token` is the content of a special added token (decode's skip rule).
  bool is_special(const std::string& token) const { return special_contents_.count(token) != 0; }
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  nlohmann::ordered_json to_json() const;

 private:
  void reindex();

  std::vector<AddedToken> tokens_;
  std::unordered_map<TokenId, std::size_t> by_id_;
  std::unordered_map<std::string, TokenId> by_content_;
  std::unordered_set<std::string> special_contents_;
  // Candidates per first byte, longest first; [0] raw-text tokens, [1] normalized tokens.
  std::unordered_map<unsigned char, std::vector<std::size_t>> by_first_byte_[2];
};

}  // namespace medgpt::data
