// ZeRO-3 under mpirun (dp = the world): every rank trains the same batch on a 4-layer tiny Qwen3
// (tied head), so the reduced gradient is dp x the single-rank gradient. A watcher between the
// model and ZeroUnits records, after every hook, how many elements of full parameters the rank
// holds: never more than two units' (the current one and the next, prefetched; no rank ever holds
// the model; the embedding and the head share a run), none after finish() (every parameter's storage is empty), and each rank's gradient
// shard equals dp x the plain model's gradient over that range (computed in float64 from the same
// values; the shard is float32, so the bound is float32 rounding: 1e-6 of the largest element).
// The same with activation checkpointing (the recomputation gathers again) and with LoRA (the
// frozen base is sharded and gathered the same way).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/lora.hpp"
#include "model/transformer.hpp"
#include "parallel/grid.hpp"
#include "train/flat_params.hpp"
#include "train/zero_units.hpp"

using namespace medgpt;

namespace {

model::ModelConfig tiny() {
  nlohmann::json j = {{"architectures", {"Qwen3ForCausalLM"}}, {"model_type", "qwen3"}, {"vocab_size", 512}, {"hidden_size", 32},
                      {"intermediate_size", 64}, {"num_hidden_layers", 4}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"head_dim", 8}, {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0},
                      {"tie_word_embeddings", true}, {"initializer_range", 0.02}};
  return model::ModelConfig::from_json(j, "tiny");
}

struct Watch final : model::UnitHooks {
  train::ZeroUnits* z = nullptr;
  std::int64_t most = 0;
  int events = 0;
  void note() {
    most = std::max(most, z->gathered_numel());
    ++events;
  }
  void before_forward(int u) override { z->before_forward(u), note(); }
  void after_forward(int u) override { z->after_forward(u), note(); }
  void before_backward(int u) override { z->before_backward(u), note(); }
  void after_backward(int u) override { z->after_backward(u), note(); }
};

// Every trainable tensor's gradient after one backward pass, flattened in `params` order.
at::Tensor flat_grads(const model::NamedTensors& params) {
  std::vector<at::Tensor> g;
  for (const auto& [name, p] : params) g.push_back(p.grad().defined() ? p.grad().to(at::kDouble).reshape({-1}) : at::zeros({p.numel()}, at::kDouble));
  return at::cat(g);
}

void run(bool lora, bool checkpointing) {
  SCOPED_TRACE(std::string(lora ? "lora" : "full") + (checkpointing ? " checkpointing" : ""));
  parallel::Grid grid(1, 1);
  const at::Tensor ids = (at::arange(2 * 12, at::kLong) * 37 % 500 + 3).view({2, 12});
  auto build = [&](model::Transformer& m) {
    m.init_random(7);
    if (lora) {
      model::LoraConfig c;
      c.r = 4;
      c.alpha = 8;
      c.dropout = 0;
      c.target_modules = model::parse_lora_targets("all");
      model::apply_lora(m, c, 11);
      for (auto& [name, b] : model::lora_parameters(m))  // non-zero B: every adapter gets a gradient
        if (name.find("lora_B") != std::string::npos) b.detach().fill_(0.01);
      model::set_lora_training(m, true);
    } else {
      m.set_requires_grad(true);
    }
    m.set_gradient_checkpointing(checkpointing);
  };
  auto trainable = [&](model::Transformer& m) { return lora ? model::lora_parameters(m) : m.named_parameters(); };

  // The plain model in float64 from the same float32 values.
  model::Transformer ref(tiny(), at::kFloat);
  build(ref);
  ref.set_compute_dtype(at::kDouble);
  if (!lora)  // (LoRA adapters keep their own dtype through set_compute_dtype)
    for (auto& [name, p] : trainable(ref)) p.set_data(p.detach().to(at::kDouble));
  const at::Tensor ref_loss = ref.loss(ids, ids);
  ref_loss.backward();
  const at::Tensor want = flat_grads(trainable(ref)) * grid.dp_size();

  model::Transformer m(tiny(), at::kFloat);
  build(m);
  model::NamedTensors params = trainable(m);
  train::FlatParams flat(params, std::vector<int>(params.size(), -1), grid.dp_size());
  m.set_compute_dtype(at::kDouble);
  train::ZeroUnits zero(m, flat, &grid.dp(), 3, /*bucket_bytes=*/4096);
  const std::int64_t lo = flat.grad_lo(), hi = lo + flat.grad.numel();  // this rank's shard
  Watch watch;
  watch.z = &zero;
  m.set_unit_hooks(&watch);
  EXPECT_EQ(zero.gathered_numel(), 0);

  std::int64_t total = 0;
  for (const auto& [name, p] : m.named_parameters()) total += p.numel();
  if (lora) for (const auto& [name, p] : model::lora_parameters(m)) total += p.numel();
  EXPECT_LT(3 * zero.largest_unit_numel(), total);  // the check below could not pass by holding everything

  flat.zero_grads();
  const at::Tensor loss = m.loss(ids, ids);
  loss.backward();
  zero.finish();
  EXPECT_NEAR(loss.item<double>(), ref_loss.item<double>(), 1e-12);
  EXPECT_GT(watch.events, 10);
  EXPECT_LE(watch.most, 2 * zero.largest_unit_numel());
  EXPECT_EQ(zero.gathered_numel(), 0);
  for (const auto& [name, p] : m.named_parameters())
    if (p.defined()) EXPECT_EQ(p.storage().nbytes(), 0u) << name << " holds memory outside its gather window";

  const at::Tensor got = flat.grad_range(lo, std::max(lo, std::min(hi, flat.numel()))).to(at::kDouble);
  const at::Tensor expect = want.narrow(0, lo, got.numel());
  const double scale = want.abs().max().item<double>();
  EXPECT_GT(scale, 0);
  EXPECT_LE((got - expect).abs().max().item<double>(), 1e-6 * scale);
  m.set_unit_hooks(nullptr);
}

}  // namespace

TEST(ZeroUnits, FullModelGathersOneUnitAtATimeAndReducesItsShard) { run(false, false); }
TEST(ZeroUnits, CheckpointedBlocksGatherAgainForTheRecomputation) { run(false, true); }
TEST(ZeroUnits, LoraBaseIsShardedToo) { run(true, false); }
