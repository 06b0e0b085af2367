// `medgpt plan`'s arithmetic on the tiny Qwen3 (2 layers, H 64, I 128, V 8000, 4 heads, 2 kv heads
// of 16, tied): parameter counts against the config's own count, each memory term and the step
// time against the formulas of train/plan.hpp worked by hand, the layouts enumerated and ranked.
#include <gtest/gtest.h>

#include "train/plan.hpp"
#include "util/error.hpp"

using namespace medgpt;

namespace {

train::PlanInputs tiny(int world, std::int64_t micro, std::int64_t global) {
  train::PlanInputs in;
  in.config = model::ModelConfig::load(std::string(MEDGPT_FIXTURES_DIR) + "/train/tiny-qwen3.json");
  in.world = world;
  in.seq_len = 64;
  in.micro_batch = micro;
  in.global_batch = global;
  in.bf16 = false;
  in.flops_per_rank = 1e9;
  in.bandwidth = 1e9;
  return in;
}

}  // namespace

TEST(Plan, ParameterCounts) {
  const train::PlanInputs in = tiny(1, 1, 1);
  // q and o 64x64 each, k and v 64x32 each, gate/up/down 64x128 each, 2 norms of 64, q/k norms of 16.
  EXPECT_EQ(train::layer_parameters(in.config), 2 * 4096 + 2 * 2048 + 3 * 8192 + 128 + 32);
  EXPECT_EQ(train::layer_parameters(in.config) * 2 + 8000 * 64 + 64, in.config.num_parameters());
  // r 8: q (64 + 64), k and v (64 + 32) each, o (64 + 64), gate and up (64 + 128) each, down (128 + 64).
  EXPECT_EQ(train::lora_layer_parameters(in.config, 8), 8 * (128 + 96 + 96 + 128 + 192 + 192 + 192));
}

TEST(Plan, MemoryAndTimeOfOneRankByHand) {
  const train::PlanInputs in = tiny(1, 2, 2);
  const train::PlanRow r = train::plan_row(in, {1, 1, 1, 0, false});
  const double P = 586112;
  EXPECT_DOUBLE_EQ(r.weights, 4 * P);
  EXPECT_DOUBLE_EQ(r.grads, 4 * P);
  EXPECT_DOUBLE_EQ(r.optimizer, 8 * P);
  // fp32: twice the 2-byte count; T 64, b 2, H 64, 4 heads; two layers; plus 3 fp32 logit chunks of 128 rows.
  const double per_layer = 2 * (64.0 * 2 * 64 * (10 + 24) + 5.0 * 4 * 64 * 64 * 2);
  EXPECT_DOUBLE_EQ(r.activations, 2 * per_layer + 3 * 4 * 128.0 * 8000);
  // (6 P + 12 L a d T) per token, 128 tokens, one rank of 1 GFLOP/s; no bubble, no transfers.
  EXPECT_DOUBLE_EQ(r.compute_s, (6 * P + 12.0 * 2 * 4 * 16 * 64) * 128 / 1e9);
  EXPECT_DOUBLE_EQ(r.step_s(), r.compute_s);
  // Checkpointing keeps each layer's input and one layer's full set; one more forward.
  const train::PlanRow c = train::plan_row(in, {1, 1, 1, 0, true});
  EXPECT_DOUBLE_EQ(c.activations, 2 * 4 * 64.0 * 2 * 64 + per_layer + 3 * 4 * 128.0 * 8000);
  EXPECT_DOUBLE_EQ(c.compute_s, (8 * P + 16.0 * 2 * 4 * 16 * 64) * 128 / 1e9);
}

TEST(Plan, PipelineDataAndTensorParallelTermsByHand) {
  // pp 2: the last stage holds a layer, the final norm and its copy of the tied embedding.
  const train::PlanRow pp = train::plan_row(tiny(2, 2, 8), {1, 2, 1, 0, false});
  EXPECT_DOUBLE_EQ(pp.weights, 4.0 * (37024 + 512000 + 64));
  EXPECT_EQ(pp.micro_per_step, 4);
  EXPECT_DOUBLE_EQ(pp.bubble, 1.0 / 5);
  EXPECT_DOUBLE_EQ(pp.pp_s, 2 * 4 * (64.0 * 2 * 64 * 4) / 1e9);  // an activation and its gradient per micro-batch
  // dp 2, ZeRO-1: optimizer state halved; the gradient all-reduce moves 2 (n-1)/n of 4 B per parameter.
  const train::PlanRow dp = train::plan_row(tiny(2, 2, 8), {1, 1, 2, 1, false});
  EXPECT_DOUBLE_EQ(dp.optimizer, 8.0 * 586112 / 2);
  EXPECT_DOUBLE_EQ(dp.dp_s, 1.0 * 4 * 586112 / 1e9);
  // tp 2: split weights halve, norms stay whole; 4 all-reduces per layer and micro-batch.
  const train::PlanRow tp = train::plan_row(tiny(2, 2, 8), {2, 1, 1, 0, false});
  EXPECT_DOUBLE_EQ(tp.weights, 4.0 * (2 * ((2 * 4096 + 2 * 2048 + 3 * 8192) / 2.0 + 160) + 8000 * 64 / 2.0 + 64));
  EXPECT_DOUBLE_EQ(tp.tp_s, 4 * 2 * 4 * 1.0 * (64.0 * 2 * 64 * 4) / 1e9);
}

TEST(Plan, ZeroStagesAndChunkedAttentionByHand) {
  const train::PlanInputs in = tiny(2, 2, 4);
  const double P = 586112, embed = 8000 * 64, layer = 37024;
  // ZeRO-2 at dp 2: the fp32 gradient shard, plus autograd's gradients of the units in flight: the
  // tied embedding's (alive from the head's backward to the lookup's) and one layer's.
  const train::PlanRow z2 = train::plan_row(in, {1, 1, 2, 2, false});
  EXPECT_DOUBLE_EQ(z2.weights, 4 * P);
  EXPECT_DOUBLE_EQ(z2.grads, 4 * P / 2 + 4 * (embed + layer));
  EXPECT_DOUBLE_EQ(z2.optimizer, 8 * P / 2);
  // ZeRO-3: the master shard plus two units gathered (the embedding and a layer, prefetched).
  const train::PlanRow z3 = train::plan_row(in, {1, 1, 2, 3, false});
  EXPECT_DOUBLE_EQ(z3.weights, 4 * P / 2 + 4 * (embed + layer));
  EXPECT_DOUBLE_EQ(z3.grads, z2.grads);
  EXPECT_DOUBLE_EQ(z3.dp_s, 1.5 * z2.dp_s);  // the weights gathered again for the backward pass
  // Chunked attention: no 5 a T^2 b term, a T b fp32 log-sum-exp instead.
  train::PlanInputs chunked = in;
  chunked.chunked_attention = true;
  const double per_layer = 2 * 64.0 * 2 * 64 * (10 + 24) + 4.0 * 4 * 64 * 2;
  EXPECT_DOUBLE_EQ(train::plan_row(chunked, {1, 1, 2, 0, false}).activations, 2 * per_layer + 3 * 4 * 128.0 * 8000);
}

TEST(Plan, EveryValidLayoutRankedFittingFirst) {
  train::PlanInputs in = tiny(4, 2, 8);
  const std::vector<train::PlanRow> rows = train::plan(in);
  // (tp, pp, dp): (1,1,4) (2,1,2) with ZeRO 0-3, (1,2,2) with ZeRO 0/1 (2 and 3 need pp 1), (2,2,1)
  // (4,1,1) without; checkpointing on/off.
  EXPECT_EQ(rows.size(), 24u);
  for (std::size_t i = 1; i < rows.size(); ++i) EXPECT_LE(rows[i - 1].step_s(), rows[i].step_s());
  // A limit between the smallest and the largest rank marks some rows; they rank after the others.
  double lo = 1e30, hi = 0;
  for (const auto& r : rows) lo = std::min(lo, r.total()), hi = std::max(hi, r.total());
  in.memory_per_rank = (lo + hi) / 2;
  const std::vector<train::PlanRow> limited = train::plan(in);
  std::size_t first_over = limited.size();
  for (std::size_t i = 0; i < limited.size(); ++i)
    if (!limited[i].fits && first_over == limited.size()) first_over = i;
  ASSERT_LT(first_over, limited.size());
  ASSERT_GT(first_over, 0u);
  for (std::size_t i = first_over; i < limited.size(); ++i) EXPECT_FALSE(limited[i].fits);
  // No layout divides a global batch of 3 rows of micro-batch 2.
  EXPECT_THROW(train::plan(tiny(4, 2, 3)), util::Error);
}
