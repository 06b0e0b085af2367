#include "model/tp_plan.hpp"

#include "util/error.hpp"

namespace medgpt::model {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
}  // namespace

void check_tp(const ModelConfig& c, int tp) {
  auto need = [&](std::int64_t n, const char* what) {
    if (n % tp != 0)
      util::fail("--tp " + std::to_string(tp), std::string(what) + " (" + std::to_string(n) + ") is not divisible by tp",
                 "pick a tp that divides the model's heads, intermediate size and vocabulary");
  };
  need(c.num_heads, "num_attention_heads");
  need(c.intermediate_size, "intermediate_size");
  need(c.vocab_size, "vocab_size");
  if (c.num_kv_heads >= tp) need(c.num_kv_heads, "num_key_value_heads");
}

int tp_split_dim(const std::string& name, const ModelConfig& c, int tp) {
  if (tp <= 1) return -1;
  const bool bias = ends_with(name, ".bias");
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return 0;
  if (has(name, "self_attn.q_proj.") || has(name, "mlp.gate_proj.") || has(name, "mlp.up_proj.")) return 0;
  if (has(name, "self_attn.k_proj.") || has(name, "self_attn.v_proj.")) return c.num_kv_heads % tp == 0 ? 0 : -1;
  if (has(name, "self_attn.o_proj.") || has(name, "mlp.down_proj.")) return bias ? -1 : 1;
  return -1;  // norms
}

at::Tensor tp_shard(const at::Tensor& full, int dim, int rank, int tp) {
  if (dim < 0 || tp <= 1) return full;
  return full.chunk(tp, dim)[static_cast<std::size_t>(rank)].contiguous();
}

}  // namespace medgpt::model
