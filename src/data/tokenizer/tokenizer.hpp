// A Hugging Face tokenizer.json (byte-level BPE: Qwen2/2.5/3, Llama-3, GPT-2) with the settings
// of its tokenizer_config.json, encoding and decoding exactly as `tokenizers`/`transformers` do.
// Encode pipeline: added tokens cut from the raw text -> normalizer -> pre-tokenizer (regex split
// + byte-level) -> BPE per piece -> post-processor (BOS/EOS when add_special_tokens).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/added_vocabulary.hpp"
#include "data/tokenizer/bpe.hpp"
#include "data/tokenizer/normalizer.hpp"
#include "data/tokenizer/pre_tokenizer.hpp"

namespace medgpt::data {

class Tokenizer {
 public:
  // `path`: a tokenizer.json file or a folder holding one (plus tokenizer_config.json, optional).
  static Tokenizer load(const std::string& path);
  // Assembles a tokenizer from its parts (training, vocabulary extension).
  // post_processor: tokenizer.json's object (null: ByteLevel, which adds nothing).
  static Tokenizer from_parts(Bpe model, AddedVocabulary added, Normalizer norm, std::unique_ptr<PreTokenizer> pre,
                              nlohmann::ordered_json config, nlohmann::ordered_json post_processor = nullptr);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = false) const;
  void encode(std::string_view text, bool add_special_tokens, std::vector<TokenId>& out) const;

  // Text of ids: lossy UTF-8 (U+FFFD for invalid bytes), as tokenizers' ByteLevel decoder.
  // clean_up: transformers' clean_up_tokenization; nullopt = tokenizer_config's setting.
  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens = false,
                     std::optional<bool> clean_up = std::nullopt) const;
  // Raw bytes of one id (empty if skipped or unknown): the unit of streaming decode.
  std::string token_bytes(TokenId id, bool skip_special_tokens = false) const;

  std::string id_to_token(TokenId id) const;             // "" when unknown
  TokenId token_to_id(const std::string& token) const;   // -1 when unknown
  // Number of ids in use: model vocabulary + added tokens (151669 for Qwen3).
  std::size_t size() const;
  TokenId max_id() const;

  std::optional<TokenId> bos_id() const { return bos_; }
  std::optional<TokenId> eos_id() const { return eos_; }
  std::optional<TokenId> pad_id() const { return pad_; }
  const std::string& chat_template() const { return chat_template_; }
  const Bpe& model() const { return model_; }
  const AddedVocabulary& added() const { return added_; }
  const Normalizer& normalizer() const { return norm_; }
  const PreTokenizer& pre_tokenizer() const { return *pre_; }
  const nlohmann::ordered_json& config() const { return config_; }
  const nlohmann::ordered_json& post_processor() const { return post_processor_; }
  const std::string& source() const { return source_; }

  // Writes DIR/tokenizer.json and DIR/tokenizer_config.json (loadable by Hugging Face).
  void save(const std::string& dir) const;

 private:
  Tokenizer();
  void read_parts(const nlohmann::json& j, const std::string& file);  // model, added tokens, normalizer, pre-tokenizer
  void apply_config(const std::string& where);
  void encode_text(std::string_view piece, std::vector<TokenId>& out) const;

  Bpe model_;
  AddedVocabulary added_;
  Normalizer norm_;
  std::unique_ptr<PreTokenizer> pre_;
  nlohmann::ordered_json post_processor_ = nullptr;  // kept verbatim for save()
  nlohmann::ordered_json config_ = nlohmann::ordered_json::object();
  std::vector<TokenId> prefix_, suffix_;               // added around the ids by add_special_tokens
  std::optional<TokenId> bos_, eos_, pad_;
  bool clean_up_ = false;
  std::string chat_template_;
  std::string source_;
};

}  // namespace medgpt::data
