#include "model/tp_plan.hpp"

#include "util/error.hpp"

namespace medgpt::model {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
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

ParallelRole linear_role(const std::string& module, const ModelConfig& c, int tp) {
  if (tp <= 1) return ParallelRole::kReplicated;
  if (module == "q_proj" || module == "gate_proj" || module == "up_proj") return ParallelRole::kColumn;
  if (module == "k_proj" || module == "v_proj") return c.num_kv_heads % tp == 0 ? ParallelRole::kColumn : ParallelRole::kReplicated;
  if (module == "o_proj" || module == "down_proj") return ParallelRole::kRow;
  return ParallelRole::kReplicated;
}

int tp_split_dim(const std::string& name, const ModelConfig& c, int tp) {
  if (tp <= 1) return -1;
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return 0;  // vocab-parallel
  // model.layers.N.self_attn.q_proj.weight -> q_proj; norms and heads are replicated
  const bool bias = ends_with(name, ".bias");
  if (!bias && !ends_with(name, ".weight")) return -1;
  const std::size_t end = name.size() - (bias ? 5 : 7), start = name.rfind('.', end - 1) + 1;
  return role_split_dim(linear_role(name.substr(start, end - start), c, tp), bias);
}

at::Tensor tp_shard(const at::Tensor& full, int dim, int rank, int tp) {
  if (dim < 0 || tp <= 1) return full;
  return full.chunk(tp, dim)[static_cast<std::size_t>(rank)].contiguous();
}

}  // namespace medgpt::model
