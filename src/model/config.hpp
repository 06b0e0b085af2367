// A Hugging Face config.json for the decoder-only models medgpt runs: Llama (2/3/3.x), Qwen2/2.5,
// Qwen3. Unsupported settings are refused by name rather than silently run wrong.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace medgpt::model {

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3 | dynamic
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;  // llama | qwen2 | qwen3
  std::int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_layers = 0;
  std::int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0, max_position_embeddings = 0;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0, initializer_range = 0.02;
  RopeScaling rope_scaling;
  bool qkv_bias = false;  // Qwen2 always; Llama/Qwen3 when attention_bias
  bool o_bias = false;    // Llama/Qwen3 when attention_bias
  bool mlp_bias = false;  // Llama mlp_bias
  bool qk_norm = false;   // Qwen3
  bool tie_word_embeddings = false;
  std::string dtype = "float32";  // torch_dtype / dtype
  std::vector<std::int64_t> bos_token_ids, eos_token_ids;
  std::optional<std::int64_t> pad_token_id;
  // > 0: a sequence classifier (architectures *ForSequenceClassification; reward models have 1):
  // `score.weight` [num_labels, hidden] on the last hidden state, and no LM head.
  std::int64_t num_labels = 0;
  nlohmann::json raw;  // the file as read, for export

  // `path`: a config.json or a folder holding one. util::Error names the file and key.
  static ModelConfig load(const std::string& path);
  static ModelConfig from_json(const nlohmann::json& j, const std::string& where);

  std::int64_t q_dim() const { return num_heads * head_dim; }
  std::int64_t kv_dim() const { return num_kv_heads * head_dim; }
  // Turns a causal LM's config into its reward model's (architectures, one label).
  void make_reward_model();
  // Parameters of the whole model (embedding, layers, norm, and the LM head unless tied, or the
  // score head).
  std::int64_t num_parameters() const;
};

}  // namespace medgpt::model
