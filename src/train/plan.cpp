#include "train/plan.hpp"

#include <algorithm>

#include "model/tp_plan.hpp"
#include "parallel/pipeline_schedule.hpp"
#include "util/error.hpp"

namespace medgpt::train {

namespace {

// A layer's parameters on one tp rank: the split linear weights / tp, the rest whole.
double layer_on_rank(const model::ModelConfig& c, int tp) {
  const double H = static_cast<double>(c.hidden_size), I = static_cast<double>(c.intermediate_size);
  const double q = static_cast<double>(c.q_dim()), kv = static_cast<double>(c.kv_dim());
  const bool kv_split = c.num_kv_heads % tp == 0;
  const double split = 2 * H * q + 3 * H * I + (c.qkv_bias ? q : 0) + (c.mlp_bias ? 2 * I : 0);
  const double kv_part = 2 * H * kv + (c.qkv_bias ? 2 * kv : 0);
  const double whole = 2 * H + (c.qk_norm ? 2.0 * static_cast<double>(c.head_dim) : 0) + (c.o_bias ? H : 0) + (c.mlp_bias ? H : 0);
  return split / tp + (kv_split ? kv_part / tp : kv_part) + whole;
}

// A layer's LoRA parameters on one tp rank: column layers split B's rows, row layers A's columns.
double lora_on_rank(const model::ModelConfig& c, std::int64_t r, int tp) {
  const double H = static_cast<double>(c.hidden_size), I = static_cast<double>(c.intermediate_size);
  const double q = static_cast<double>(c.q_dim()), kv = static_cast<double>(c.kv_dim()), R = static_cast<double>(r);
  const double kv_out = c.num_kv_heads % tp == 0 ? kv / tp : kv;
  const double column = R * (H + q / tp) + 2 * R * (H + kv_out) + 2 * R * (H + I / tp);  // q, k, v, gate, up
  const double row = R * (q / tp + H) + R * (I / tp + H);                                 // o, down
  return column + row;
}

}  // namespace

std::int64_t layer_parameters(const model::ModelConfig& c) { return static_cast<std::int64_t>(layer_on_rank(c, 1)); }

std::int64_t lora_layer_parameters(const model::ModelConfig& c, std::int64_t r) { return static_cast<std::int64_t>(lora_on_rank(c, r, 1)); }

PlanRow plan_row(const PlanInputs& in, const PlanLayout& l) {
  const model::ModelConfig& c = in.config;
  PlanRow row;
  row.layout = l;
  const std::int64_t global = in.global_rows();
  const std::int64_t m = global / (in.micro_batch * l.dp);
  row.micro_per_step = m;
  const bool lora = in.trainable != "full", qlora = in.trainable == "qlora";
  const double act_bytes = in.bf16 ? 2 : 4;
  const double T = static_cast<double>(in.seq_len), b = static_cast<double>(in.micro_batch), H = static_cast<double>(c.hidden_size);
  const double V = static_cast<double>(c.vocab_size), heads = static_cast<double>(c.num_heads);
  const double embed = V * H / l.tp, layer = layer_on_rank(c, l.tp), norms = 2 * H + (c.qk_norm ? 2.0 * static_cast<double>(c.head_dim) : 0);
  const double lora_layer = lora ? lora_on_rank(c, in.lora_r, l.tp) : 0;
  // Korthikanti et al.'s count (2-byte activations), scaled to the compute dtype.
  const double scores = in.chunked_attention ? 4 * heads * T * b / l.tp : act_bytes / 2 * 5 * heads * T * T * b / l.tp;
  const double per_layer = act_bytes / 2 * T * b * H * (10 + 24.0 / l.tp) + scores;
  const std::vector<int> layers = parallel::stage_layers(static_cast<int>(c.num_layers), l.pp);
  double most = -1, trainable_most = 0, layers_most = 0;
  for (int s = 0; s < l.pp; ++s) {
    const double n = layers[static_cast<std::size_t>(s)];
    const bool first = s == 0, last = s == l.pp - 1;
    // Embedding on the first stage; the head on the last (a tied head: the last stage's own copy).
    const double tables = (first ? embed : 0) + (last && (!c.tie_word_embeddings || !first) ? embed : 0);
    const double params = n * layer + tables + (last ? H + static_cast<double>(c.num_labels) * H : 0);
    double weights = 0, trainable = 0;
    if (!lora) {
      trainable = params;
      weights = params * (in.bf16 ? 6 : 4);
    } else {
      trainable = n * lora_layer;
      const double linear = n * (layer - norms);
      weights = linear * (qlora ? 0.5 + 4.0 / 64 : act_bytes) + (params - linear) * act_bytes + trainable * (in.bf16 ? 6 : 4);
    }
    double grads = trainable * (in.bf16 ? 6 : 4);
    const double optimizer = trainable * 8 / (l.zero >= 1 ? l.dp : 1);
    // ZeRO-2/3: shards, plus the units in flight whole in the compute dtype (model/unit_hooks.hpp).
    const double unit = std::max(first || last ? embed : 0.0, layer);
    if (l.zero >= 2) grads = trainable * 4 / l.dp + act_bytes * (lora ? lora_layer : unit + (c.tie_word_embeddings && first && last ? layer : 0.0));
    // ZeRO-3: the current unit and the next one (prefetched) whole.
    if (l.zero == 3) weights = (weights - trainable * (in.bf16 ? 6 : 4)) / l.dp + trainable * 4 / l.dp + act_bytes * (unit + layer);
    const double in_flight = static_cast<double>(std::min<std::int64_t>(l.pp - s, m));
    double activations = l.checkpointing ? in_flight * n * act_bytes * T * b * H + per_layer : in_flight * n * per_layer;
    if (last) activations += 3 * 4 * std::min(1024.0, b * T) * V / l.tp;  // the chunked LM loss's logits
    const double total = weights + grads + optimizer + activations;
    if (total > most) {
      most = total;
      row.weights = weights;
      row.grads = grads;
      row.optimizer = optimizer;
      row.activations = activations;
    }
    trainable_most = std::max(trainable_most, trainable);
    layers_most = std::max(layers_most, n);
  }
  // Time: the compute of the whole step over every rank, stretched by the bubble, plus transfers.
  const double P = static_cast<double>(c.num_parameters()), L = static_cast<double>(c.num_layers);
  const double attention = 12 * L * heads * static_cast<double>(c.head_dim) * T;
  double per_token = (lora ? 4 : 6) * P + attention;
  if (l.checkpointing) per_token += 2 * P + attention / 3;  // one more forward
  row.compute_s = per_token * static_cast<double>(global) * T / (in.world * in.flops_per_rank);
  row.bubble = parallel::ideal_bubble(l.pp, static_cast<int>(m));
  const double activation = T * b * H * act_bytes;
  // ZeRO-3 gathers the weights once more, for the backward pass.
  if (l.dp > 1) row.dp_s = (l.zero == 3 ? 1.5 : 1.0) * 2.0 * (l.dp - 1) / l.dp * 4 * trainable_most / in.bandwidth;
  if (l.tp > 1) row.tp_s = (l.checkpointing ? 6 : 4) * layers_most * static_cast<double>(m) * 2.0 * (l.tp - 1) / l.tp * activation / in.bandwidth;
  if (l.pp > 1) row.pp_s = 2 * static_cast<double>(m) * activation / in.bandwidth;
  row.fits = in.memory_per_rank <= 0 || row.total() <= in.memory_per_rank;
  return row;
}

std::vector<PlanRow> plan(const PlanInputs& in) {
  const model::ModelConfig& c = in.config;
  const std::int64_t global = in.global_rows();
  std::vector<PlanRow> rows;
  for (int tp = 1; tp <= in.world; ++tp) {
    if (in.world % tp != 0) continue;
    try {
      model::check_tp(c, tp);
    } catch (const util::Error&) {
      continue;  // heads, MLP width or vocabulary not divisible
    }
    for (int pp = 1; pp <= in.world / tp && pp <= c.num_layers; ++pp) {
      if ((in.world / tp) % pp != 0) continue;
      const int dp = in.world / (tp * pp);
      if (global % (in.micro_batch * dp) != 0) continue;
      // ZeRO-2/3 need dp and no pipeline (train/zero_units.hpp's check_zero_layout).
      for (int zero = 0; zero <= (dp == 1 ? 0 : pp == 1 ? 3 : 1); ++zero)
        for (const bool ckpt : {false, true}) rows.push_back(plan_row(in, {tp, pp, dp, zero, ckpt}));
    }
  }
  if (rows.empty())
    util::fail("--global-batch", std::to_string(global) + " rows is not a multiple of micro-batch x dp for any layout of " + std::to_string(in.world) + " ranks",
               "pick a global batch that the micro-batch times a divisor of the world divides");
  std::stable_sort(rows.begin(), rows.end(), [](const PlanRow& a, const PlanRow& b) {
    if (a.fits != b.fits) return a.fits;
    if (a.step_s() != b.step_s()) return a.step_s() < b.step_s();
    return a.total() < b.total();
  });
  return rows;
}

}  // namespace medgpt::train
