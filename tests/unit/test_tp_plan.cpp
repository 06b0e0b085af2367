// The tensor-parallel plan: each linear layer's role (Megatron's layout) and the split dimension of
// every parameter that follows from it; a model's Linear layers carry the role the plan gives.
#include <gtest/gtest.h>

#include "model/linear.hpp"
#include "model/tp_plan.hpp"

using namespace medgpt;
using model::ParallelRole;

namespace {

model::ModelConfig config(std::int64_t kv_heads) {
  model::ModelConfig c;
  c.num_heads = 8;
  c.num_kv_heads = kv_heads;
  c.head_dim = 4;
  c.intermediate_size = 64;
  c.vocab_size = 128;
  return c;
}

}  // namespace

TEST(TpPlan, ColumnRowAndReplicatedLayers) {
  const model::ModelConfig c = config(4);
  for (const char* m : {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"}) EXPECT_EQ(model::linear_role(m, c, 2), ParallelRole::kColumn) << m;
  for (const char* m : {"o_proj", "down_proj"}) EXPECT_EQ(model::linear_role(m, c, 2), ParallelRole::kRow) << m;
  // Fewer kv heads than tp ranks: k/v are whole on every rank.
  EXPECT_EQ(model::linear_role("k_proj", config(2), 4), ParallelRole::kReplicated);
  EXPECT_EQ(model::linear_role("v_proj", config(2), 4), ParallelRole::kReplicated);
  EXPECT_EQ(model::linear_role("q_proj", c, 1), ParallelRole::kReplicated);  // no tp: nothing is split
}

TEST(TpPlan, SplitDimensionsFollowTheRoles) {
  const model::ModelConfig c = config(4);
  EXPECT_EQ(model::tp_split_dim("model.embed_tokens.weight", c, 2), 0);  // vocab-parallel
  EXPECT_EQ(model::tp_split_dim("lm_head.weight", c, 2), 0);
  EXPECT_EQ(model::tp_split_dim("model.layers.3.self_attn.q_proj.weight", c, 2), 0);
  EXPECT_EQ(model::tp_split_dim("model.layers.3.self_attn.q_proj.bias", c, 2), 0);
  EXPECT_EQ(model::tp_split_dim("model.layers.3.self_attn.o_proj.weight", c, 2), 1);
  EXPECT_EQ(model::tp_split_dim("model.layers.3.self_attn.o_proj.bias", c, 2), -1);  // added once, after the sum
  EXPECT_EQ(model::tp_split_dim("model.layers.0.mlp.down_proj.weight", c, 2), 1);
  EXPECT_EQ(model::tp_split_dim("model.layers.0.mlp.up_proj.weight", c, 2), 0);
  EXPECT_EQ(model::tp_split_dim("model.layers.0.self_attn.k_proj.weight", config(2), 4), -1);
  for (const char* n : {"model.norm.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_norm.weight", "score.weight"})
    EXPECT_EQ(model::tp_split_dim(n, c, 2), -1) << n;
  EXPECT_EQ(model::tp_split_dim("model.layers.3.self_attn.q_proj.weight", c, 1), -1);
}
