#include "model/config.hpp"

#include <type_traits>

#include "util/error.hpp"
#include "util/json.hpp"

namespace medgpt::model {

namespace {

// Sizes past any real model (the largest have hidden 16k, MLP 53k, vocabulary 256k, 126 layers):
// larger values are typos, and would overflow the parameter count.
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 20, kMaxVocab = std::int64_t{1} << 24, kMaxCount = std::int64_t{1} << 12;

std::int64_t need_int(const nlohmann::json& j, const char* key, const std::string& where, std::int64_t most) {
  if (!j.contains(key)) util::fail(where + ": " + key, "missing", "config.json must set it");
  if (!j[key].is_number_integer() || j[key].get<std::int64_t>() <= 0 || j[key].get<std::int64_t>() > most)
    util::fail(where + ": " + key, "must be an integer from 1 to " + std::to_string(most) + ", got " + j[key].dump(), "fix config.json");
  return j[key].get<std::int64_t>();
}

// j[key] when present and not null, else `def`; a value of another type is an error naming the key
// (nlohmann's value() would throw its own type_error instead).
template <class T>
T optional(const nlohmann::json& j, const char* key, T def, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return def;
  const nlohmann::json& v = j[key];
  bool ok = false;
  if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
  else if constexpr (std::is_same_v<T, std::string>) ok = v.is_string();
  else if constexpr (std::is_integral_v<T>) ok = v.is_number_integer();
  else ok = v.is_number();
  if (!ok) util::fail(where + ": " + key, "has the wrong type: " + v.dump(), "fix config.json");
  return v.get<T>();
}

std::vector<std::int64_t> ids(const nlohmann::json& j, const char* key) {
  std::vector<std::int64_t> out;
  if (!j.contains(key) || j[key].is_null()) return out;
  if (j[key].is_number_integer()) out.push_back(j[key].get<std::int64_t>());
  else if (j[key].is_array())
    for (const auto& v : j[key])
      if (v.is_number_integer()) out.push_back(v.get<std::int64_t>());
  return out;
}

}  // namespace

ModelConfig ModelConfig::load(const std::string& path) {
  const std::string file = util::is_directory(path) ? path + "/config.json" : path;
  if (!util::file_exists(file)) util::fail(file, "no such file", "pass a Hugging Face model folder (config.json + model.safetensors)");
  return from_json(util::read_json_file(file), file);
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) util::fail(where, "is not a JSON object", "pass a Hugging Face config.json");
  ModelConfig c;
  c.raw = j;
  c.model_type = optional<std::string>(j, "model_type", "", where);
  if (c.model_type != "llama" && c.model_type != "qwen2" && c.model_type != "qwen3")
    util::fail(where + ": model_type", "\"" + c.model_type + "\" is not supported",
               "medgpt runs llama, qwen2 (Qwen2/2.5) and qwen3 models");
  c.vocab_size = need_int(j, "vocab_size", where, kMaxVocab);
  c.hidden_size = need_int(j, "hidden_size", where, kMaxWidth);
  c.intermediate_size = need_int(j, "intermediate_size", where, kMaxWidth);
  c.num_layers = need_int(j, "num_hidden_layers", where, kMaxCount);
  c.num_heads = need_int(j, "num_attention_heads", where, kMaxCount);
  c.num_kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null() ? need_int(j, "num_key_value_heads", where, kMaxCount)
                                                                                             : c.num_heads;
  if (j.contains("head_dim") && !j["head_dim"].is_null()) c.head_dim = need_int(j, "head_dim", where, kMaxCount);
  else c.head_dim = c.hidden_size / c.num_heads;
  if (c.head_dim < 1) util::fail(where + ": num_attention_heads", std::to_string(c.num_heads) + " heads leave no room in hidden_size " +
                                     std::to_string(c.hidden_size), "fix config.json, or set head_dim");
  if (c.num_heads % c.num_kv_heads != 0)
    util::fail(where + ": num_key_value_heads", std::to_string(c.num_kv_heads) + " does not divide num_attention_heads " +
                                                    std::to_string(c.num_heads), "fix config.json");
  c.max_position_embeddings = optional<std::int64_t>(j, "max_position_embeddings", 2048, where);
  c.rms_norm_eps = optional(j, "rms_norm_eps", 1e-6, where);
  c.initializer_range = optional(j, "initializer_range", 0.02, where);
  const std::string act = optional<std::string>(j, "hidden_act", "silu", where);
  if (act != "silu") util::fail(where + ": hidden_act", "\"" + act + "\" is not supported", "medgpt implements SwiGLU (silu)");

  // rope: transformers v5 writes rope_parameters; older files rope_theta + rope_scaling.
  nlohmann::json rope = j.contains("rope_parameters") && j["rope_parameters"].is_object() ? j["rope_parameters"]
                        : j.contains("rope_scaling") && j["rope_scaling"].is_object()   ? j["rope_scaling"]
                                                                                        : nlohmann::json::object();
  const std::string rw = where + ": rope";
  c.rope_theta = optional(rope, "rope_theta", optional(j, "rope_theta", 10000.0, where), rw);
  c.rope_scaling.type = optional(rope, "rope_type", optional<std::string>(rope, "type", "default", rw), rw);
  c.rope_scaling.factor = optional(rope, "factor", 1.0, rw);
  c.rope_scaling.low_freq_factor = optional(rope, "low_freq_factor", 1.0, rw);
  c.rope_scaling.high_freq_factor = optional(rope, "high_freq_factor", 4.0, rw);
  c.rope_scaling.original_max_position_embeddings = optional(rope, "original_max_position_embeddings", c.max_position_embeddings, rw);
  const auto& t = c.rope_scaling.type;
  if (t != "default" && t != "linear" && t != "llama3" && t != "dynamic")
    util::fail(where + ": rope_scaling", "rope_type \"" + t + "\" is not supported", "medgpt supports default, linear, llama3 and dynamic");
  if (optional(j, "use_sliding_window", false, where))
    util::fail(where + ": use_sliding_window", "sliding-window attention is not supported", "set use_sliding_window to false");

  const bool attention_bias = optional(j, "attention_bias", false, where);
  c.qkv_bias = c.model_type == "qwen2" || attention_bias;
  c.o_bias = c.model_type != "qwen2" && attention_bias;
  c.mlp_bias = c.model_type == "llama" && optional(j, "mlp_bias", false, where);
  c.qk_norm = c.model_type == "qwen3";
  c.tie_word_embeddings = optional(j, "tie_word_embeddings", false, where);
  if (j.contains("dtype") && j["dtype"].is_string()) c.dtype = j["dtype"];
  else if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.dtype = j["torch_dtype"];
  c.bos_token_ids = ids(j, "bos_token_id");
  c.eos_token_ids = ids(j, "eos_token_id");
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) c.pad_token_id = j["pad_token_id"].get<std::int64_t>();
  // *ForSequenceClassification (reward models): a score head instead of the LM head.
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() && j["architectures"][0].is_string()) {
    const std::string arch = j["architectures"][0];
    const std::string suffix = "ForSequenceClassification";
    if (arch.size() > suffix.size() && arch.compare(arch.size() - suffix.size(), suffix.size(), suffix) == 0) {
      c.num_labels = j.contains("id2label") && j["id2label"].is_object() ? static_cast<std::int64_t>(j["id2label"].size()) : 2;
      if (j.contains("num_labels") && j["num_labels"].is_number_integer()) c.num_labels = j["num_labels"];
      if (c.num_labels < 1 || c.num_labels > kMaxVocab) util::fail(where + ": id2label", "a sequence classifier needs from 1 to " + std::to_string(kMaxVocab) + " labels", "fix config.json");
    }
  }
  return c;
}

void ModelConfig::make_reward_model() {
  static const std::pair<const char*, const char*> kArch[] = {{"llama", "Llama"}, {"qwen2", "Qwen2"}, {"qwen3", "Qwen3"}};
  for (const auto& [type, prefix] : kArch)
    if (model_type == type) raw["architectures"] = {std::string(prefix) + "ForSequenceClassification"};
  num_labels = 1;
  raw["id2label"] = {{"0", "LABEL_0"}};
  raw["label2id"] = {{"LABEL_0", 0}};
}

std::int64_t ModelConfig::num_parameters() const {
  const std::int64_t H = hidden_size, I = intermediate_size;
  std::int64_t attn = H * q_dim() + 2 * H * kv_dim() + q_dim() * H;
  if (qkv_bias) attn += q_dim() + 2 * kv_dim();
  if (o_bias) attn += H;
  if (qk_norm) attn += 2 * head_dim;
  std::int64_t mlp = 3 * H * I + (mlp_bias ? 2 * I + H : 0);
  const std::int64_t layer = attn + mlp + 2 * H;
  const std::int64_t head = num_labels > 0 ? num_labels * H : tie_word_embeddings ? 0 : vocab_size * H;
  return vocab_size * H + head + num_layers * layer + H;
}

}  // namespace medgpt::model
