// The training loop's pieces against their formulas (specs/algorithms.md §1-2): gradient
// accumulation normalised by the global label count, the learning-rate schedules, global-norm
// clipping, NEFTune's noise, and the flat parameter vector in fp32 and bf16.
#include <gtest/gtest.h>

#include <cmath>

#include "align/lm.hpp"
#include "data/loader.hpp"
#include "model/lora.hpp"
#include "model/transformer.hpp"
#include "train/adamw.hpp"
#include "train/data_parallel.hpp"
#include "train/flat_params.hpp"
#include "train/schedule.hpp"

using namespace medgpt;

namespace {

const std::string kTiny = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_qwen3/model";

// A pt corpus of 8 blocks of 12 tokens (ids < the tiny model's vocabulary).
data::TokenArrays blocks() {
  data::TokenArrays c;
  for (int b = 0; b < 8; ++b) {
    std::vector<std::int32_t> ids;
    for (int t = 0; t < 12; ++t) ids.push_back((b * 37 + t * 11) % 900 + 1);
    c.append(ids);
  }
  c.blocks = c.offsets;
  return c;
}

std::vector<int> whole(const model::NamedTensors& p) { return std::vector<int>(p.size(), -1); }

// The gradient vector (and the summed loss) after one global batch of 8 rows taken as `micro` rows
// x (8 / micro) accumulation steps.
at::Tensor accumulated(at::ScalarType dtype, std::size_t micro, double* loss = nullptr) {
  model::Transformer m = model::Transformer::from_pretrained(kTiny, dtype);
  m.set_requires_grad(true);
  train::FlatParams flat(m.named_parameters(), whole(m.named_parameters()), 1);
  align::LmObjective lm(m, false);
  const data::TokenArrays c = blocks();
  std::vector<data::Batch> batches;
  double items = 0;
  for (std::size_t first = 0; first < 8; first += micro) {
    std::vector<std::int64_t> rows;
    for (std::size_t r = first; r < first + micro; ++r) rows.push_back(static_cast<std::int64_t>(r));
    batches.push_back(data::batch_of(c, data::Kind::Pt, rows, 12, 0));
    items += lm.items(batches.back());
  }
  flat.zero_grads();
  double sum = 0;
  for (const auto& b : batches) {
    at::Tensor l = lm.loss(b, items, true);
    l.backward();
    flat.collect_grads();
    sum += l.item<double>();
  }
  if (loss) *loss = sum;
  return flat.grad.clone();
}

}  // namespace

TEST(Accumulation, EightMicroBatchesOfOneEqualOneOfEight) {
  double l1 = 0, l8 = 0, l4 = 0;
  const at::Tensor one = accumulated(at::kFloat, 8, &l1), eight = accumulated(at::kFloat, 1, &l8), four = accumulated(at::kFloat, 2, &l4);
  EXPECT_GT(l1, 1.0);
  EXPECT_NEAR(l1, l8, 1e-6);  // the token mean of the global batch either way
  EXPECT_NEAR(l1, l4, 1e-6);
  // Gradients: equal up to fp32 summation order (cancellations make it ~3e-6 of the norm)...
  EXPECT_LE((one - eight).norm().item<double>() / one.norm().item<double>(), 1e-5);
  EXPECT_LE((one - four).norm().item<double>() / one.norm().item<double>(), 1e-5);
  // ...and to fp32 rounding of the stored sum when the model computes in float64.
  const at::Tensor d1 = accumulated(at::kDouble, 8), d8 = accumulated(at::kDouble, 1);
  EXPECT_LE((d1 - d8).norm().item<double>() / d1.norm().item<double>(), 1e-6);
  EXPECT_LE((d1 - one).norm().item<double>() / d1.norm().item<double>(), 1e-5);
}

TEST(Accumulation, Bf16ComputeCopiesAccumulateInFp32) {
  // bf16 compute: gradients land in the fp32 vector after each micro-batch; the sum matches the
  // single large micro-batch to bf16 precision and points where the fp32 gradient points.
  const at::Tensor ref = accumulated(at::kFloat, 8);
  const at::Tensor one = accumulated(at::kBFloat16, 8), eight = accumulated(at::kBFloat16, 1);
  EXPECT_EQ(one.scalar_type(), at::kFloat);
  EXPECT_LE((one - eight).norm().item<double>() / one.norm().item<double>(), 2e-2);
  const double cos = (one * ref).sum().item<double>() / (one.norm().item<double>() * ref.norm().item<double>());
  EXPECT_GE(cos, 0.99);
}

TEST(FlatParams, Fp32ParametersAreViewsAndBf16AreCopies) {
  model::Transformer m = model::Transformer::from_pretrained(kTiny, at::kFloat);
  m.set_requires_grad(true);
  const auto before = m.named_parameters()[3].second.clone();
  train::FlatParams flat(m.named_parameters(), whole(m.named_parameters()), 7);
  EXPECT_EQ(flat.padded() % 7, 0);
  EXPECT_GE(flat.padded(), flat.numel());
  const train::FlatSegment& s = flat.segments()[3];
  EXPECT_TRUE(m.named_parameters()[3].second.equal(before));
  flat.master.narrow(0, s.offset, 1).fill_(42.0f);  // the model sees the master
  EXPECT_EQ(m.named_parameters()[3].second.view({-1})[0].item<float>(), 42.0f);

  model::Transformer b = model::Transformer::from_pretrained(kTiny, at::kBFloat16);
  b.set_requires_grad(true);
  train::FlatParams fb(b.named_parameters(), whole(b.named_parameters()), 1);
  EXPECT_EQ(fb.master.scalar_type(), at::kFloat);
  fb.master.narrow(0, fb.segments()[3].offset, 1).fill_(0.5f);
  EXPECT_NE(b.named_parameters()[3].second.view({-1})[0].item<float>(), 0.5f);
  fb.publish();
  EXPECT_EQ(b.named_parameters()[3].second.view({-1})[0].item<float>(), 0.5f);
}

TEST(FlatParams, EachStepStartsFromZeroForCopiesAndViews) {
  // A bf16 copy (written by its first collect_grads of the step), an fp32 view (zeroed by
  // zero_grads), and a copy that gets no gradient in the second step (then zero, not stale).
  at::Tensor a = at::zeros({3 << 20}, at::kBFloat16).requires_grad_(true);  // spans several add_ chunks
  at::Tensor v = at::zeros({5}, at::kFloat).requires_grad_(true);
  at::Tensor u = at::zeros({4}, at::kBFloat16).requires_grad_(true);
  train::FlatParams flat({{"a", a}, {"v", v}, {"u", u}}, {-1, -1, -1}, 1);
  auto micro_batch = [&](double k, bool with_u) {
    at::Tensor loss = (a.to(at::kFloat) * k).sum() + (v * k).sum();
    if (with_u) loss = loss + (u.to(at::kFloat) * k).sum();
    loss.backward();
    flat.collect_grads();
  };
  // Every element of segment a, v, u of the gradient vector equals the given value.
  auto expect_grads = [&](double a_value, double v_value, double u_value) {
    const double want[] = {a_value, v_value, u_value};
    for (int i = 0; i < 3; ++i)
      EXPECT_TRUE(flat.grad.narrow(0, flat.segments()[i].offset, flat.segments()[i].numel).eq(want[i]).all().item<bool>())
          << flat.segments()[i].name;
  };
  flat.zero_grads();
  micro_batch(1.0, true);
  micro_batch(2.0, true);
  expect_grads(3.0, 3.0, 3.0);
  flat.zero_grads();
  micro_batch(0.5, false);
  micro_batch(0.25, false);
  expect_grads(0.75, 0.75, 0.0);
}

TEST(Schedule, MatchesTransformersFormulas) {
  // W = 2, T = 10.
  train::Schedule s{"linear", 2, 10, 0.0};
  EXPECT_DOUBLE_EQ(s.factor(0), 0.0);
  EXPECT_DOUBLE_EQ(s.factor(1), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(2), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(6), 0.5);  // (10 - 6) / (10 - 2)
  EXPECT_DOUBLE_EQ(s.factor(10), 0.0);
  s.type = "cosine";
  EXPECT_DOUBLE_EQ(s.factor(1), 0.5);
  EXPECT_NEAR(s.factor(6), 0.5, 1e-15);                             // p = 0.5: 0.5 (1 + cos(pi/2))
  EXPECT_NEAR(s.factor(4), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);  // p = 0.25
  EXPECT_NEAR(s.factor(10), 0.0, 1e-15);
  s.type = "cosine_with_min_lr";
  s.min_lr_rate = 0.1;
  EXPECT_NEAR(s.factor(6), 0.5 * 0.9 + 0.1, 1e-15);
  EXPECT_NEAR(s.factor(10), 0.1, 1e-15);
  s.type = "constant_with_warmup";
  EXPECT_DOUBLE_EQ(s.factor(1), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(9), 1.0);
  s.type = "constant";
  EXPECT_DOUBLE_EQ(s.factor(0), 1.0);
  EXPECT_EQ(train::warmup_steps(0, 0.1, 95), 10);  // ceil(9.5)
  EXPECT_EQ(train::warmup_steps(3, 0.1, 95), 3);
  EXPECT_THROW(train::check_schedule_type("cosine_restarts", "--x"), util::Error);
}

TEST(Clipping, GlobalNormAndCoefficient) {
  at::Tensor a = at::zeros({2}, at::kFloat).requires_grad_(true), b = at::zeros({1, 2}, at::kFloat).requires_grad_(true);
  train::FlatParams flat({{"a.weight", a}, {"b.weight", b}}, {-1, -1}, 1);
  flat.grad.copy_(at::tensor({3.0f, 0.0f, 0.0f, 4.0f}));
  train::DataParallel dp(nullptr, nullptr, nullptr, 0);
  const double norm = dp.grad_norm(flat);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  const double coef = 1.0 / (norm + 1e-6);  // torch.nn.utils.clip_grad_norm_(max_norm=1)
  dp.scale_grads(flat, coef);
  EXPECT_NEAR(flat.grad[0].item<double>(), 3.0 * coef, 1e-7);
  EXPECT_NEAR(dp.grad_norm(flat), 1.0, 1e-6);
  // The parameters' .grad are views of the vector.
  EXPECT_NEAR(b.grad()[0][1].item<double>(), 4.0 * coef, 1e-7);
}

TEST(NEFTune, UniformNoiseOfTheRightMagnitude) {
  at::manual_seed(7);
  const std::int64_t T = 50, H = 64;
  const double alpha = 5, mag = alpha / std::sqrt(static_cast<double>(T * H));
  const at::Tensor noise = model::add_neftune_noise(at::zeros({4, T, H}), alpha);
  EXPECT_LE(noise.abs().max().item<double>(), mag);
  EXPECT_GE(noise.abs().max().item<double>(), 0.99 * mag);
  const double n = static_cast<double>(noise.numel()), sd = mag / std::sqrt(3.0);  // Uniform(-m, m)
  EXPECT_LE(std::abs(noise.mean().item<double>()), 4 * sd / std::sqrt(n));
  EXPECT_NEAR(noise.std().item<double>(), sd, 0.02 * sd);

  // In the model: only with alpha set (training), never at evaluation.
  model::Transformer m = model::Transformer::from_pretrained(kTiny, at::kFloat);
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::tensor({1, 21, 55, 103}, at::kLong).view({1, 4});
  model::ForwardInputs in;
  EXPECT_TRUE(m.logits(ids, in).equal(m.logits(ids)));
  in.neftune_alpha = 5;
  EXPECT_FALSE(m.logits(ids, in).equal(m.logits(ids)));
}

TEST(GradientCheckpointing, LoraDropoutRecomputesTheSameMasks) {
  // The recomputed block must draw the dropout masks of the forward pass (saved generator state).
  auto grads = [](bool ckpt) {
    model::Transformer m = model::Transformer::from_pretrained(kTiny, at::kFloat);
    model::LoraConfig c;
    c.r = 4;
    c.dropout = 0.5;
    model::apply_lora(m, c, 3);
    model::set_lora_training(m, true);
    m.set_gradient_checkpointing(ckpt);
    at::manual_seed(11);
    {
      at::NoGradGuard no_grad;
      for (auto& [n, t] : model::lora_parameters(m)) t.normal_(0, 0.1);  // B = 0 would hide the masks
    }
    const at::Tensor ids = at::tensor({1, 21, 55, 103, 165, 241, 331, 435}, at::kLong).view({2, 4});
    m.loss(ids, ids).backward();
    std::vector<at::Tensor> g;
    for (auto& [n, t] : model::lora_parameters(m)) g.push_back(t.grad().clone());
    return g;
  };
  const auto plain = grads(false), recomputed = grads(true);
  ASSERT_EQ(plain.size(), recomputed.size());
  double worst = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) worst = std::max(worst, (plain[i] - recomputed[i]).abs().max().item<double>());
  EXPECT_LE(worst, 1e-6);
}
