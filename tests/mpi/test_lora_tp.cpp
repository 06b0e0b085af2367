// LoRA under tensor parallelism equals the single-rank LoRA model: for each fixture model and each
// tp that divides the world (2, and 4 with kv heads replicated since the models have 2), adapters
// on every linear layer start as this rank's part of the tp=1 adapters (same seed), and with a
// non-zero B (deterministic, the same values as the tp=1 model's) logits, loss and every adapter
// gradient (this rank's part of the tp=1 gradient) match the unsplit model on the same rank within
// 1e-5. An adapter saved under tp is the tp=1 adapter bit for bit, loads back at tp=1 and under tp,
// and merging on the tp model gives the unmerged logits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "dist/grid.hpp"
#include "dist/mpi_env.hpp"
#include "model/lora.hpp"
#include "model/nf4.hpp"
#include "model/transformer.hpp"
#include "model/tp_plan.hpp"
#include "util/error.hpp"

using namespace medgpt;
namespace fs = std::filesystem;

namespace {

std::string fixture_model(const std::string& name) { return std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/" + name + "/model"; }

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

bool is_b(const std::string& name) { return name.find("lora_B") != std::string::npos; }

// B of the k-th adapter: 0.01 * one of 11 levels in [-1, 1] along its flattened full tensor.
at::Tensor b_values(std::int64_t k, at::IntArrayRef full) {
  const std::int64_t n = full[0] * full[1];
  return (((at::arange(n, at::kLong) + 3 * k) % 11).to(at::kFloat) - 5.0).div(5.0).mul(0.01).view(full);
}

// One folder per tp group, named after its tp rank 0's pid (collective over tp).
std::string shared_dir(dist::Comm& tp, const std::string& tag) {
  at::Tensor pid = at::tensor({static_cast<std::int64_t>(::getpid())}, at::kLong);
  tp.broadcast(pid, 0);
  return (fs::temp_directory_path() / ("medgpt_lora_tp_" + tag + "_" + std::to_string(pid.item<std::int64_t>()))).string();
}

model::LoraConfig config() {
  model::LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.dropout = 0.0;
  c.target_modules = model::parse_lora_targets("all");
  return c;
}

class LoraTensorParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraTensorParallel, MatchesSingleRank) {
  const int world = dist::world_size();
  const std::string name = GetParam();
  for (int tp : {2, 4}) {
    if (world % tp != 0) continue;
    SCOPED_TRACE("tp " + std::to_string(tp));
    dist::Grid grid(tp, 1);
    const int rank = grid.tp_rank();
    const auto ids = at::tensor({1, 21, 55, 103, 165, 241, 331, 435, 553, 685, 831, 991, 17, 29}, at::kLong).view({2, 7});
    at::Tensor labels = ids.clone();
    labels.index_put_({0, 3}, -100);

    model::Transformer full = model::Transformer::from_pretrained(fixture_model(name), at::kFloat);
    model::Transformer split = model::Transformer::from_pretrained(fixture_model(name), at::kFloat, &grid.tp());
    const model::LoraConfig c = config();
    model::apply_lora(full, c, 11);
    model::apply_lora(split, c, 11);
    split.set_gradient_checkpointing(name == "tiny_llama");  // recomputation with the adapters' collectives inside

    // Initialisation: this rank's part of the tp=1 adapters, bit for bit; the layout as designed.
    const auto whole = model::lora_parameters(full);
    const auto mine = model::lora_parameters(split);
    ASSERT_EQ(whole.size(), mine.size());
    ASSERT_EQ(whole.size(), 2u * 7 * static_cast<std::size_t>(full.config().num_layers));
    const bool kv_split = full.config().num_kv_heads % tp == 0;
    for (std::size_t i = 0; i < whole.size(); ++i) {
      const std::string& n = mine[i].first;
      SCOPED_TRACE(n);
      ASSERT_EQ(n, whole[i].first);
      const int dim = model::lora_split_dim(split, n);
      const bool row = n.find("o_proj") != std::string::npos || n.find("down_proj") != std::string::npos;
      const bool kv = n.find("k_proj") != std::string::npos || n.find("v_proj") != std::string::npos;
      const int want_dim = is_b(n) ? (row || (kv && !kv_split) ? -1 : 0) : (row ? 1 : -1);
      EXPECT_EQ(dim, want_dim);
      EXPECT_EQ(model::lora_split_dim(full, n), -1);
      EXPECT_TRUE(at::equal(mine[i].second, model::tp_shard(whole[i].second, dim, rank, tp)));
    }
    // A trained-looking B, the same full values in both models.
    {
      at::NoGradGuard no_grad;
      for (std::size_t i = 0; i < whole.size(); ++i) {
        if (!is_b(whole[i].first)) continue;
        const at::Tensor b = b_values(static_cast<std::int64_t>(i), whole[i].second.sizes());
        whole[i].second.copy_(b);
        mine[i].second.copy_(model::tp_shard(b, model::lora_split_dim(split, mine[i].first), rank, tp));
      }
    }

    at::Tensor base_logits;
    {
      at::NoGradGuard no_grad;
      model::set_lora_enabled(full, false);
      base_logits = full.logits(ids);
      model::set_lora_enabled(full, true);
    }
    at::Tensor logits_full, logits_split;
    {
      at::NoGradGuard no_grad;
      logits_full = full.logits(ids);
      logits_split = split.logits(ids);
    }
    const double d_logits = max_diff(logits_split, logits_full), moved = max_diff(logits_full, base_logits);
    EXPECT_GT(moved, 1e-2);  // the adapters matter
    EXPECT_LE(d_logits, 1e-5);
    at::Tensor loss_full = full.loss(ids, labels), loss_split = split.loss(ids, labels);
    const double d_loss = std::abs(loss_split.item<double>() - loss_full.item<double>());
    EXPECT_LE(d_loss, 1e-5);
    loss_full.backward();
    loss_split.backward();
    double d_grad = 0, g_max = 0;
    for (std::size_t i = 0; i < whole.size(); ++i) {
      SCOPED_TRACE(mine[i].first);
      ASSERT_TRUE(mine[i].second.grad().defined());
      const at::Tensor want = model::tp_shard(whole[i].second.grad(), model::lora_split_dim(split, mine[i].first), rank, tp);
      ASSERT_EQ(mine[i].second.grad().sizes(), want.sizes());
      const double d = max_diff(mine[i].second.grad(), want);
      EXPECT_LE(d, 1e-5);
      d_grad = std::max(d_grad, d);
      g_max = std::max(g_max, want.abs().max().item<double>());
    }
    for (const auto& [n, p] : split.named_parameters()) EXPECT_FALSE(p.grad().defined()) << n;  // base frozen

    // Saved under tp (gathered, tp rank 0 writes) == the tp=1 adapter; loads at tp=1 and under tp.
    const std::string dir = shared_dir(grid.tp(), name + "_" + std::to_string(tp));
    model::save_lora(split, c, dir);
    model::Transformer single = model::Transformer::from_pretrained(fixture_model(name), at::kFloat);
    model::load_lora(single, dir);
    const auto back = model::lora_parameters(single);
    ASSERT_EQ(back.size(), whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(back[i].first, whole[i].first);
      EXPECT_TRUE(at::equal(back[i].second, whole[i].second)) << back[i].first;
    }
    model::Transformer again = model::Transformer::from_pretrained(fixture_model(name), at::kFloat, &grid.tp());
    model::load_lora(again, dir);
    const auto reloaded = model::lora_parameters(again);
    ASSERT_EQ(reloaded.size(), mine.size());
    for (std::size_t i = 0; i < mine.size(); ++i) EXPECT_TRUE(at::equal(reloaded[i].second, mine[i].second)) << mine[i].first;
    at::NoGradGuard no_grad;
    EXPECT_TRUE(at::equal(again.logits(ids), logits_split));
    grid.tp().barrier();  // everyone has read the folder
    if (rank == 0) fs::remove_all(dir);

    // Merging on the tp model: each rank's B·A is its shard of the full update.
    model::merge_lora(again);
    EXPECT_TRUE(model::lora_parameters(again).empty());
    const double d_merged = max_diff(again.logits(ids), logits_full);
    EXPECT_LE(d_merged, 1e-5);

    if (grid.rank() == 0)
      std::printf("[ lora tp  ] %s tp %d: logits max|d| %.2g (adapters moved them by %.3f), loss %.7f |d| %.2g, "
                  "A/B grads max|d| %.2g (max |grad| %.3g), merged-under-tp logits max|d| %.2g\n",
                  name.c_str(), tp, d_logits, moved, loss_full.item<double>(), d_loss, d_grad, g_max, d_merged);
  }
}

INSTANTIATE_TEST_SUITE_P(HfTiny, LoraTensorParallel, ::testing::Values("tiny_qwen2", "tiny_qwen3", "tiny_llama"));

// QLoRA stays tp=1: quantizing a tensor-parallel model is refused with one clear line.
TEST(LoraTensorParallelRefusals, Nf4UnderTp) {
  if (dist::world_size() % 2 != 0) GTEST_SKIP() << "needs an even world";
  dist::Grid grid(2, 1);
  model::Transformer split = model::Transformer::from_pretrained(fixture_model("tiny_qwen2"), at::kFloat, &grid.tp());
  try {
    model::quantize_nf4(split);
    ADD_FAILURE() << "quantize_nf4 accepted a tp model";
  } catch (const util::Error& e) {
    const std::string line = util::error_line(e);
    EXPECT_NE(line.find("tensor parallelism"), std::string::npos) << line;
  }
}

}  // namespace
