// LoRA under tensor parallelism equals the single-rank LoRA model: for each fixture model and each
// tp that divides the world (2, and 4 with kv heads replicated since the models have 2), adapters
// on every linear layer start as this rank's part of the tp=1 adapters (same seed), and with a
// non-zero B (deterministic, the same values as the tp=1 model's) logits, loss and every adapter
// gradient (this rank's part of the tp=1 gradient) match the unsplit model on the same rank. The
// claim is equality in exact arithmetic, so the fixture models run in float64, where the split sums
// differ from the unsplit ones by a few hundred roundings of 1.1e-16 relative to the magnitudes
// (< 1e-12): the bound 1e-10 holds on any BLAS kernel and thread count, and any wrong piece of a
// shard or a missing reduction (errors of 1e-3 and more) fails it. With LoRA dropout (the default
// 0.05) the tp model draws the tp=1 model's masks. An adapter saved under tp is the tp=1 adapter bit for bit, loads back at tp=1 and under tp,
// and merging on the tp model gives the unmerged logits. QLoRA under tp: each rank's NF4 shard holds
// the tp=1 4-bit values where shards are whole blocks, and the QLoRA model matches tp=1 likewise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "parallel/grid.hpp"
#include "parallel/mpi_env.hpp"
#include "model/lora.hpp"
#include "model/nf4.hpp"
#include "model/transformer.hpp"
#include "model/tp_plan.hpp"

using namespace medgpt;
namespace fs = std::filesystem;

namespace {

std::string fixture_model(const std::string& name) { return std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/" + name + "/model"; }

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Two rows of 7 ids within every fixture's vocabulary.
at::Tensor two_rows() { return at::tensor({1, 21, 55, 103, 165, 241, 331, 435, 553, 685, 831, 991, 17, 29}, at::kLong).view({2, 7}); }

bool is_b(const std::string& name) { return name.find("lora_B") != std::string::npos; }

// B of the k-th adapter: 0.01 * one of 11 levels in [-1, 1] along its flattened full tensor.
at::Tensor b_values(std::int64_t k, at::IntArrayRef full) {
  const std::int64_t n = full[0] * full[1];
  return (((at::arange(n, at::kLong) + 3 * k) % 11).to(at::kFloat) - 5.0).div(5.0).mul(0.01).view(full);
}

// One folder per tp group, named after its tp rank 0's pid (collective over tp).
std::string shared_dir(parallel::Comm& tp, const std::string& tag) {
  at::Tensor pid = at::tensor({static_cast<std::int64_t>(::getpid())}, at::kLong);
  tp.broadcast(pid, 0);
  return (fs::temp_directory_path() / ("medgpt_lora_tp_" + tag + "_" + std::to_string(pid.item<std::int64_t>()))).string();
}

model::LoraConfig config(at::ScalarType dtype = at::kFloat) {
  model::LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.dropout = 0.0;
  c.dtype = dtype;
  c.target_modules = model::parse_lora_targets("all");
  return c;
}

// How a tp model with adapters agrees with the same model on one rank.
struct Agreement {
  at::Tensor logits_full, logits_split;
  double d_logits = 0, moved = 0, loss = 0, d_loss = 0, d_grad = 0, g_max = 0;
};

// Gives every B the same trained-looking values in both models (this rank's part in `split`), then
// compares logits, loss and every adapter gradient (each within 1e-10: float64, see above) and
// checks that the base stayed frozen.
constexpr double kTol = 1e-10;
// With `reseed`, each forward pass starts from the same generator state (dropout masks drawn alike).
void compare_with_single_rank(model::Transformer& full, model::Transformer& split, int tp, int rank, const at::Tensor& ids,
                              const at::Tensor& labels, Agreement* r, bool reseed = false) {
  auto fresh = [&] {
    if (reseed) at::manual_seed(1234);
  };
  const auto whole = model::lora_parameters(full);
  const auto mine = model::lora_parameters(split);
  ASSERT_EQ(whole.size(), mine.size());
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
    fresh();
    r->logits_full = full.logits(ids);
    fresh();
    r->logits_split = split.logits(ids);
  }
  r->d_logits = max_diff(r->logits_split, r->logits_full), r->moved = max_diff(r->logits_full, base_logits);
  EXPECT_GT(r->moved, 1e-2);  // the adapters matter
  EXPECT_LE(r->d_logits, kTol);
  fresh();
  at::Tensor loss_full = full.loss(ids, labels);
  fresh();
  at::Tensor loss_split = split.loss(ids, labels);
  r->loss = loss_full.item<double>(), r->d_loss = std::abs(loss_split.item<double>() - r->loss);
  EXPECT_LE(r->d_loss, kTol);
  loss_full.backward();
  loss_split.backward();
  for (std::size_t i = 0; i < whole.size(); ++i) {
    SCOPED_TRACE(mine[i].first);
    ASSERT_TRUE(mine[i].second.grad().defined());
    const at::Tensor want = model::tp_shard(whole[i].second.grad(), model::lora_split_dim(split, mine[i].first), rank, tp);
    ASSERT_EQ(mine[i].second.grad().sizes(), want.sizes());
    const double d = max_diff(mine[i].second.grad(), want);
    EXPECT_LE(d, kTol);
    r->d_grad = std::max(r->d_grad, d);
    r->g_max = std::max(r->g_max, want.abs().max().item<double>());
  }
  for (const auto& [n, p] : split.named_parameters()) EXPECT_FALSE(p.grad().defined()) << n;  // base frozen
}

class LoraTensorParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraTensorParallel, MatchesSingleRank) {
  const int world = parallel::world_size();
  const std::string name = GetParam();
  for (int tp : {2, 4}) {
    if (world % tp != 0) continue;
    SCOPED_TRACE("tp " + std::to_string(tp));
    parallel::Grid grid(tp, 1);
    const int rank = grid.tp_rank();
    const at::Tensor ids = two_rows();
    at::Tensor labels = ids.clone();
    labels.index_put_({0, 3}, -100);

    model::Transformer full = model::Transformer::from_pretrained(fixture_model(name), at::kDouble);
    model::Transformer split = model::Transformer::from_pretrained(fixture_model(name), at::kDouble, &grid.tp());
    const model::LoraConfig c = config(at::kDouble);
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
    Agreement a;
    compare_with_single_rank(full, split, tp, rank, ids, labels, &a);
    if (HasFatalFailure()) return;
    const at::Tensor& logits_full = a.logits_full;
    const at::Tensor& logits_split = a.logits_split;

    // Saved under tp (gathered, tp rank 0 writes) == the tp=1 adapter; loads at tp=1 and under tp.
    const std::string dir = shared_dir(grid.tp(), name + "_" + std::to_string(tp));
    model::save_lora(split, c, dir);
    model::Transformer single = model::Transformer::from_pretrained(fixture_model(name), at::kDouble);
    model::load_lora(single, dir, at::kDouble);
    const auto back = model::lora_parameters(single);
    ASSERT_EQ(back.size(), whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(back[i].first, whole[i].first);
      EXPECT_TRUE(at::equal(back[i].second, whole[i].second)) << back[i].first;
    }
    model::Transformer again = model::Transformer::from_pretrained(fixture_model(name), at::kDouble, &grid.tp());
    model::load_lora(again, dir, at::kDouble);
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
    EXPECT_LE(d_merged, kTol);

    if (grid.rank() == 0)
      std::printf("[ lora tp  ] %s tp %d: logits max|d| %.2g (adapters moved them by %.3f), loss %.7f |d| %.2g, "
                  "A/B grads max|d| %.2g (max |grad| %.3g), merged-under-tp logits max|d| %.2g\n",
                  name.c_str(), tp, a.d_logits, a.moved, a.loss, a.d_loss, a.d_grad, a.g_max, d_merged);
  }
}

// LoRA dropout in training mode (p 0.3, so that many inputs drop): the tp model, seeded like the
// tp=1 model, draws the same masks; a row-parallel adapter (o_proj, down_proj) keeps its columns of
// the full mask. Drawing per shard instead gives every rank the same pattern on its columns, which
// differs from tp=1 by ~1e-2 in the loss.
TEST_P(LoraTensorParallel, DropoutDrawsTheSingleRankMasks) {
  const int world = parallel::world_size();
  const std::string name = GetParam();
  for (int tp : {2, 4}) {
    if (world % tp != 0) continue;
    SCOPED_TRACE("tp " + std::to_string(tp));
    parallel::Grid grid(tp, 1);
    const at::Tensor ids = two_rows();
    const at::Tensor labels = ids.clone();
    model::Transformer full = model::Transformer::from_pretrained(fixture_model(name), at::kDouble);
    model::Transformer split = model::Transformer::from_pretrained(fixture_model(name), at::kDouble, &grid.tp());
    model::LoraConfig c = config(at::kDouble);
    c.dropout = 0.3;
    model::apply_lora(full, c, 11);
    model::apply_lora(split, c, 11);
    model::set_lora_training(full, true);
    model::set_lora_training(split, true);
    Agreement a;
    compare_with_single_rank(full, split, tp, grid.tp_rank(), ids, labels, &a, /*reseed=*/true);
    // The masks acted: without dropout the loss is another.
    model::set_lora_training(full, false);
    const double eval_loss = full.loss(ids, labels).item<double>();
    EXPECT_GT(std::abs(eval_loss - a.loss), 1e-6);
    if (grid.rank() == 0)
      std::printf("[ lora tp  ] %s tp %d, dropout 0.3: loss %.7f (without dropout %.7f) |d| %.2g, A/B grads max|d| %.2g\n", name.c_str(), tp,
                  a.loss, eval_loss, a.d_loss, a.d_grad);
  }
}

INSTANTIATE_TEST_SUITE_P(HfTiny, LoraTensorParallel, ::testing::Values("tiny_qwen2", "tiny_qwen3", "tiny_llama"));

// QLoRA under tp, on a model whose shards are whole 64-element NF4 blocks at tp 2 and 4 (hidden 256,
// MLP 512, 4 heads of 64, 2 kv heads: replicated at tp 4): every rank's NF4 weight dequantizes to
// its part of the tp=1 one (bit for bit without double quantization; with it, the absmax
// statistics are per shard, within one 8-bit step), and the QLoRA model matches tp=1 (float64, 1e-10).
TEST(QloraTensorParallel, MatchesSingleRank) {
  const nlohmann::json j = {{"model_type", "qwen3"}, {"architectures", {"Qwen3ForCausalLM"}}, {"vocab_size", 512},
                            {"hidden_size", 256}, {"intermediate_size", 512}, {"num_hidden_layers", 2},
                            {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 64},
                            {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0}, {"max_position_embeddings", 64},
                            {"tie_word_embeddings", false}, {"initializer_range", 0.02}, {"torch_dtype", "float32"}};
  const model::ModelConfig cfg = model::ModelConfig::from_json(j, "qlora-tp test config");
  const auto ids = at::tensor({1, 21, 55, 103, 165, 241, 331, 435, 503, 85, 31, 191, 17, 29}, at::kLong).view({2, 7});
  at::Tensor labels = ids.clone();
  labels.index_put_({1, 2}, -100);
  for (int tp : {2, 4}) {
    if (parallel::world_size() % tp != 0) continue;
    parallel::Grid grid(tp, 1);
    const int rank = grid.tp_rank();
    Agreement a;
    double d_plain = 0, d_double = 0, w_max = 0;  // dequantized weights vs tp 1
    for (bool double_quant : {false, true}) {
      SCOPED_TRACE("tp " + std::to_string(tp) + (double_quant ? ", double-quantized" : ""));
      model::Transformer full(cfg, at::kFloat), split(cfg, at::kFloat, at::kCPU, &grid.tp());
      full.init_random(5);
      split.init_random(5);
      model::quantize_nf4(full, double_quant);
      model::quantize_nf4(split, double_quant);
      double& d_weight = double_quant ? d_double : d_plain;
      for (std::size_t l = 0; l < full.blocks().size(); ++l) {
        const model::Block &fb = full.blocks()[l], &sb = split.blocks()[l];
        const std::vector<std::pair<const char*, std::pair<const model::Linear*, const model::Linear*>>> linears = {
            {"self_attn.q_proj", {&fb.q, &sb.q}}, {"self_attn.k_proj", {&fb.k, &sb.k}},  {"self_attn.v_proj", {&fb.v, &sb.v}},
            {"self_attn.o_proj", {&fb.o, &sb.o}}, {"mlp.gate_proj", {&fb.gate, &sb.gate}}, {"mlp.up_proj", {&fb.up, &sb.up}},
            {"mlp.down_proj", {&fb.down, &sb.down}}};
        for (const auto& [name, pair] : linears) {
          const std::string path = "model.layers." + std::to_string(l) + "." + name + ".weight";
          SCOPED_TRACE(path);
          ASSERT_TRUE(pair.first->nf4 && pair.second->nf4);
          EXPECT_FALSE(pair.second->weight.defined());  // only the 4-bit copy is held
          const at::Tensor want = model::tp_shard(model::nf4_dequantize(*pair.first->nf4, at::kFloat), split.split_dim(path), rank, tp);
          const at::Tensor got = model::nf4_dequantize(*pair.second->nf4, at::kFloat);
          ASSERT_EQ(got.sizes(), want.sizes());
          const double d = max_diff(got, want);
          // Double quantization: absmax within half a step of the 8-bit dynamic map (< 1% of it).
          EXPECT_LE(d, double_quant ? 0.01 * want.abs().max().item<double>() : 0.0);
          d_weight = std::max(d_weight, d);
          w_max = std::max(w_max, want.abs().max().item<double>());
        }
      }
      if (double_quant) continue;  // the model comparison needs identical 4-bit weights
      // Compared in float64 (the 4-bit weights dequantize to their exact fp32 values).
      full.set_compute_dtype(at::kDouble);
      split.set_compute_dtype(at::kDouble);
      const model::LoraConfig c = config(at::kDouble);
      model::apply_lora(full, c, 11);
      model::apply_lora(split, c, 11);
      compare_with_single_rank(full, split, tp, rank, ids, labels, &a);
      if (HasFatalFailure()) return;
    }
    if (grid.rank() == 0)
      std::printf("[ qlora tp ] tp %d: dequantized NF4 shards vs tp 1 max|d| %.2g (double-quantized %.2g, max |w| %.3g); "
                  "logits max|d| %.2g (adapters moved them by %.3f), loss %.7f |d| %.2g, A/B grads max|d| %.2g (max |grad| %.3g)\n",
                  tp, d_plain, d_double, w_max, a.d_logits, a.moved, a.loss, a.d_loss, a.d_grad, a.g_max);
  }
}

}  // namespace
