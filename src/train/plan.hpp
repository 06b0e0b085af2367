// `medgpt plan`'s model of a training run: for every valid (tp, pp, dp, ZeRO, activation
// checkpointing) layout of a world, the memory of the fullest rank (weights, gradients, optimizer
// state, activations) and a predicted step time from a measured matmul rate and a collective bandwidth.
// Pure arithmetic over the model config: testable, no ranks, no LibTorch.
//
// Memory, per rank, for the pipeline stage that holds the most:
//   weights     fp32: 4 B/param; bf16: 4 (fp32 master) + 2 (compute copy); a LoRA base 2 or 4
//               (QLoRA: NF4's 0.5 B + 1/64 B of block scales for the linear weights)
//   gradients   4 B per trainable parameter (the flat fp32 vector) + 2 under bf16 (the .grad)
//   optimizer   AdamW's m and v, 8 B per trainable parameter, / dp under ZeRO-1, 2 and 3
//   ZeRO-2      the fp32 gradient vector / dp, plus autograd's gradients of the units in flight in
//               the compute dtype: the largest unit's (a tied embedding's lasts the whole backward)
//   ZeRO-3      the same, and the weights too: the fp32 master (and a LoRA base) / dp, plus two
//               units gathered in the compute dtype (the current and the prefetched next: the
//               largest and a layer)
//   activations per layer and micro-batch, as Korthikanti et al. 2022 count them for 2-byte
//               activations without flash attention: T b H (10 + 24 / tp) + 5 a T^2 b / tp (x2
//               in fp32); chunked attention keeps no T^2 term, a T b / tp fp32 log-sum-exp instead; with checkpointing only each layer's input, 2 T b H, plus one layer's
//               full set; a stage keeps min(pp - s, m) micro-batches in flight (1F1B).
// Step time: (flops per token x tokens) / (world x measured matmul FLOP/s), stretched by the pipeline bubble
// (m + p - 1) / m, plus the gradient all-reduce over dp, 4 activation all-reduces per layer and
// micro-batch over tp, and the activations sent between stages, at the measured bandwidth.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.hpp"

namespace medgpt::train {

struct PlanInputs {
  model::ModelConfig config;
  int world = 1;
  std::int64_t seq_len = 2048, global_batch = 0, micro_batch = 1;  // rows; global 0: world x micro
  bool bf16 = true;
  std::string trainable = "full";  // full | lora | qlora
  std::int64_t lora_r = 8;         // LoRA on all 7 linear layers of each block
  double flops_per_rank = 1e12;    // FLOP/s one rank reaches on one of the model's layers (fwd + bwd)
  double bandwidth = 10e9;         // measured all-reduce bus bandwidth (B/s)
  double memory_per_rank = 0;      // bytes; 0: no limit
  bool chunked_attention = false;  // --model.attn_implementation chunked
  std::int64_t global_rows() const { return global_batch > 0 ? global_batch : micro_batch * world; }
};

struct PlanLayout {
  int tp = 1, pp = 1, dp = 1, zero = 0;
  bool checkpointing = false;
};

struct PlanRow {
  PlanLayout layout;
  std::int64_t micro_per_step = 1;  // accumulation steps (the pipeline's m)
  double weights = 0, grads = 0, optimizer = 0, activations = 0;  // bytes, fullest rank
  double total() const { return weights + grads + optimizer + activations; }
  double compute_s = 0, bubble = 0, dp_s = 0, tp_s = 0, pp_s = 0;
  double step_s() const { return compute_s / (1.0 - bubble) + dp_s + tp_s + pp_s; }
  bool fits = true;
};

// One layout's row (valid or not: the caller checks divisibility).
PlanRow plan_row(const PlanInputs& in, const PlanLayout& l);

// Parameters of one decoder layer, of the embedding (one table), and of the model.
std::int64_t layer_parameters(const model::ModelConfig& c);
// LoRA adapter parameters of one layer (rank r on q, k, v, o, gate, up, down).
std::int64_t lora_layer_parameters(const model::ModelConfig& c, std::int64_t r);

// One layout's row (assumed valid).
PlanRow plan_row(const PlanInputs& in, const PlanLayout& layout);
// Every valid layout, fitting ones first, each group fastest first. util::Error when the inputs
// leave none (e.g. a global batch no layout divides).
std::vector<PlanRow> plan(const PlanInputs& in);

}  // namespace medgpt::train
