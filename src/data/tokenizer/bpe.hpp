// The byte-level BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocabulary, ranked
// merges and the merge loop of Hugging Face tokenizers (Word::merge_all: lowest rank first, then
// leftmost), working on token ids of raw bytes so no byte-level strings are built on the hot path.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace medgpt::data {

using TokenId = std::int32_t;

class Bpe {
 public:
  Bpe() = default;
  // Reads tokenizer.json's "model" object. `where` prefixes error messages (the file path).
  static Bpe from_json(const nlohmann::json& model, const std::string& where);
  // Builds a model from byte-level token strings (id = position in `tokens` unless ids given)
  // and merges given as pairs of token strings, in rank order.
  static Bpe from_parts(std::vector<std::pair<std::string, TokenId>> vocab,
                        std::vector<std::pair<std::string, std::string>> merges, bool ignore_merges,
                        const std::string& where);

  // Appends the ids of one pre-token (raw bytes, before byte-level mapping).
  void encode_word(std::string_view raw, std::vector<TokenId>& out) const;

  // Byte-level token string of an id in the model vocabulary ("" when absent).
  const std::string& token(TokenId id) const;
  // Id of a byte-level token string, or -1.
  TokenId id(const std::string& token) const;
  std::size_t vocab_size() const { return vocab_.size(); }
  TokenId max_id() const { return static_cast<TokenId>(id_to_token_.size()) - 1; }
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }
  bool ignore_merges() const { return ignore_merges_; }
  // (id, token) in id order.
  std::vector<std::pair<TokenId, std::string>> vocab_by_id() const;

  nlohmann::ordered_json to_json() const;  // key order as Hugging Face writes it

 private:
  void index(const std::string& where);
  std::vector<TokenId> merge_bytes(std::string_view raw) const;

  std::unordered_map<std::string, TokenId> vocab_;   // byte-level string -> id
  std::vector<std::string> id_to_token_;             // id -> byte-level string ("" for holes)
  std::vector<std::pair<std::string, std::string>> merges_;
  bool ignore_merges_ = false;

  // Derived indexes for encoding.
  struct MergeInfo {
    std::int32_t rank;
    TokenId merged;
  };
  std::unordered_map<std::uint64_t, MergeInfo> merge_of_;  // (left << 32 | right) -> rank, merged id
  TokenId byte_id_[256];                                   // id of each single byte, or -1
  std::unordered_map<std::string, TokenId> raw_vocab_;     // raw bytes -> id (ignore_merges)
  std::uint64_t serial_ = 0;                               // identifies this model in per-thread caches
};

}  // namespace medgpt::data
