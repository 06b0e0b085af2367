// Llama, Qwen2 and Qwen3 against the references made with Hugging Face transformers
// (tests/fixtures/hf-tiny/<model>): logits, activations, loss, every gradient, one AdamW step.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "model/lm_loss.hpp"
#include "model/rms_norm.hpp"
#include "model/rope.hpp"
#include "model/safetensors.hpp"
#include "model/transformer.hpp"
#include "train/adamw.hpp"
#include "train/flat_params.hpp"
#include "util/json.hpp"

using namespace medgpt;

namespace {

struct Fixture {
  std::string dir;
  nlohmann::json ref;
  std::map<std::string, at::Tensor> tensors;
};

Fixture fixture(const std::string& name) {
  Fixture f;
  f.dir = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/" + name;
  f.ref = util::read_json_file(f.dir + "/ref.json");
  for (auto& [n, t] : model::read_safetensors(f.dir + "/ref.safetensors")) f.tensors[n] = t;
  return f;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

class ModelFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelFixture, LogitsLossGradientsAndOneAdamWStep) {
  const Fixture f = fixture(GetParam());
  model::Transformer m = model::Transformer::from_pretrained(f.dir + "/model", at::kFloat);
  const at::Tensor ids = f.tensors.at("input_ids");

  // Forward: logits against transformers (fp32) and against the float64 NumPy recomputation.
  at::Tensor logits;
  {
    at::NoGradGuard no_grad;
    logits = m.logits(ids);
  }
  EXPECT_LE(max_abs_diff(logits, f.tensors.at("logits")), 1e-4);
  const auto f64 = model::read_safetensors(f.dir + "/ref_numpy_f64.safetensors");
  EXPECT_LE(max_abs_diff(logits, f64.at(0).second), 1e-4);

  // Loss and gradients of every parameter.
  m.set_requires_grad(true);
  const at::Tensor labels = model::shift_labels(ids).view({-1});
  const double n_labels = static_cast<double>(labels.ne(model::kIgnoreIndex).sum().item<std::int64_t>());
  at::Tensor hidden = m.hidden(ids);
  at::Tensor loss = model::lm_loss(hidden.view({-1, hidden.size(-1)}), m.lm_head(), labels, n_labels, /*chunk_rows=*/7);
  EXPECT_NEAR(loss.item<double>(), f.tensors.at("loss").item<double>(), 1e-5);
  EXPECT_NEAR(loss.item<double>(), f.ref.at("loss").get<double>(), 1e-5);
  loss.backward();
  int checked = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(p.grad().defined());
    const at::Tensor& want = f.tensors.at("grad." + name);
    const double rel = (p.grad() - want).norm().item<double>() / want.norm().item<double>();
    EXPECT_LE(rel, 1e-4);
    EXPECT_NEAR(p.grad().norm().item<double>(), f.ref.at("grad_l2_norms").at(name).get<double>(),
                1e-4 * f.ref.at("grad_l2_norms").at(name).get<double>());
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(f.ref.at("grad_l2_norms").size()));

  // One AdamW step with the fixture's hyper-parameters, then the loss again. Adam's first step is
  // lr * g / (|g| + eps) per element: gradients that agree to ~2e-6 (different BLAS) still move
  // near-zero elements differently. So the optimizer is checked on the gradients transformers
  // computed (exact), and the step from our own gradients through the loss it reaches.
  const auto& h = f.ref.at("adamw");
  train::AdamWOptions opt;
  opt.lr = h.at("lr");
  opt.beta1 = h.at("betas")[0];
  opt.beta2 = h.at("betas")[1];
  opt.eps = h.at("eps");
  opt.weight_decay = h.at("weight_decay");
  opt.decay_all = true;  // the fixture ran torch.optim.AdamW(model.parameters()): one group
  model::Transformer own = model::Transformer::from_pretrained(f.dir + "/model", at::kFloat);
  own.set_requires_grad(true);
  {
    at::NoGradGuard no_grad;
    auto mine = m.named_parameters(), theirs = own.named_parameters();
    for (std::size_t i = 0; i < mine.size(); ++i) {
      theirs[i].second.mutable_grad() = mine[i].second.grad().clone();                     // ours
      mine[i].second.mutable_grad().copy_(f.tensors.at("grad." + mine[i].first));         // transformers'
    }
  }
  // The flat optimizer the trainer uses: parameters become views of the master vector, the
  // gradients set above are carried into the gradient vector.
  const std::vector<int> whole(m.named_parameters().size(), -1);
  train::FlatParams flat(m.named_parameters(), whole, 1, /*decay_all=*/true);
  train::AdamW adam(flat, opt);
  adam.step(flat, opt.lr);
  for (const auto& [name, p] : m.named_parameters()) {
    SCOPED_TRACE(name);
    EXPECT_LE(max_abs_diff(p, f.tensors.at("param_after_step." + name)), 1e-5);
  }
  at::NoGradGuard no_grad;
  auto loss_of = [&](const model::Transformer& t) {
    at::Tensor hs = t.hidden(ids);
    return model::lm_loss(hs.view({-1, hs.size(-1)}), t.lm_head(), labels, n_labels).item<double>();
  };
  const double want = f.ref.at("loss_after_1_adamw_step").get<double>();
  EXPECT_NEAR(loss_of(m), want, 1e-5);
  EXPECT_LE(max_abs_diff(m.logits(ids), f.tensors.at("logits_after_step")), 1e-4);
  train::FlatParams flat_own(own.named_parameters(), whole, 1, true);
  train::AdamW adam_own(flat_own, opt);
  adam_own.step(flat_own, opt.lr);
  EXPECT_NEAR(loss_of(own), want, 1e-3);
}

TEST(AdamW, TrainerGroupsSkipBiasesAndNorms) {
  EXPECT_TRUE(train::decays("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(train::decays("lm_head.weight"));
  EXPECT_FALSE(train::decays("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_FALSE(train::decays("model.layers.0.input_layernorm.weight"));
  EXPECT_FALSE(train::decays("model.layers.0.self_attn.q_norm.weight"));
  EXPECT_FALSE(train::decays("model.norm.weight"));
  EXPECT_TRUE(train::decays("model.normalizer.weight"));
}

TEST(AdamW, OneStepByHand) {
  // algorithms.md: theta=1, g=0.5, lr=1e-3, betas (0.9, 0.999), eps=1e-8, wd=0.01 -> 0.99899000002
  at::Tensor p = at::ones({1}, at::kFloat).requires_grad_(true);
  p.mutable_grad() = at::full({1}, 0.5, at::kFloat);
  train::AdamWOptions opt;
  opt.lr = 1e-3;
  opt.weight_decay = 0.01;
  train::FlatParams flat({{"w.weight", p}}, {-1}, 1);
  train::AdamW adam(flat, opt);
  adam.step(flat, opt.lr);
  EXPECT_NEAR(p.item<double>(), 0.99899000002, 1e-7);
  // A bias gets no decay: 1 - 1e-3 * sign(0.5) = 0.999 (plus the eps effect).
  at::Tensor b = at::ones({1}, at::kFloat).requires_grad_(true);
  b.mutable_grad() = at::full({1}, 0.5, at::kFloat);
  train::FlatParams flat_b({{"w.bias", b}}, {-1}, 1);
  train::AdamW adam_b(flat_b, opt);
  adam_b.step(flat_b, opt.lr);
  EXPECT_NEAR(b.item<double>(), 1.0 - 1e-3 * 0.5 / (0.5 + 1e-8), 1e-7);
}

INSTANTIATE_TEST_SUITE_P(HfTiny, ModelFixture, ::testing::Values("tiny_qwen2", "tiny_qwen3", "tiny_llama"));

}  // namespace

TEST(GradientCheckpointing, SameLossAndGradientsAsPlainBackward) {
  const std::string dir = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_qwen3/model";
  const at::Tensor ids = at::tensor({1, 21, 55, 103, 165, 241, 331, 435, 553, 685}, at::kLong).view({2, 5});
  model::Transformer plain = model::Transformer::from_pretrained(dir, at::kFloat);
  model::Transformer ckpt = model::Transformer::from_pretrained(dir, at::kFloat);
  plain.set_requires_grad(true);
  ckpt.set_requires_grad(true);
  ckpt.set_gradient_checkpointing(true);
  at::Tensor a = plain.loss(ids, ids), b = ckpt.loss(ids, ids);
  EXPECT_EQ(a.item<double>(), b.item<double>());
  a.backward();
  b.backward();
  const auto pa = plain.named_parameters(), pb = ckpt.named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    SCOPED_TRACE(pa[i].first);
    ASSERT_TRUE(pb[i].second.grad().defined());
    EXPECT_LE((pa[i].second.grad() - pb[i].second.grad()).abs().max().item<double>(), 1e-6);
  }
}

TEST(RmsNorm, HandWrittenBackwardEqualsAutogradOfTransformersFormula) {
  // y = w * (x_f32 * rsqrt(mean(x_f32^2) + eps)).to(dtype), differentiated by autograd, against
  // model::rms_norm's own backward; x and w both trainable, then x alone (a frozen norm).
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    const double eps = 1e-6, tol = dtype == at::kFloat ? 1e-6 : 1e-2;
    const at::Tensor x0 = (at::randn({3, 5, 64}) * 3).to(dtype), w0 = (at::rand({64}) + 0.5).to(dtype), gy = at::randn({3, 5, 64}).to(dtype);
    for (bool train_w : {true, false}) {
      at::Tensor x1 = x0.clone().requires_grad_(true), w1 = w0.clone().requires_grad_(train_w);
      at::Tensor x2 = x0.clone().requires_grad_(true), w2 = w0.clone().requires_grad_(train_w);
      const at::Tensor xf = x2.to(at::kFloat);
      const at::Tensor want = w2 * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(dtype);
      const at::Tensor got = model::rms_norm(x1, w1, eps);
      EXPECT_TRUE(at::equal(got, want));
      got.backward(gy);
      want.backward(gy);
      auto rel = [](const at::Tensor& a, const at::Tensor& b) {
        return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>() / b.to(at::kFloat).abs().max().item<double>();
      };
      EXPECT_LE(rel(x1.grad(), x2.grad()), tol);
      EXPECT_EQ(w1.grad().defined(), train_w);
      if (train_w) {
        EXPECT_LE(rel(w1.grad(), w2.grad()), tol);
      }
      EXPECT_TRUE(at::equal(x1, x0));  // the input is not modified (fp32 to() aliases it)
    }
  }
}

TEST(TiedEmbedding, FusedLossGradientEqualsAutogradThroughTheLogits) {
  // A tied model: loss() hands the embedding's gradient over as sparse rows, added into the LM
  // head's dense gradient. The weight's gradient must equal plain autograd through logits() and
  // cross-entropy (dense embedding gradient), and stay a dense tensor.
  const std::string dir = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_qwen2/model";
  model::ModelConfig config = model::ModelConfig::load(dir);
  config.tie_word_embeddings = true;
  config.raw["tie_word_embeddings"] = true;
  const at::Tensor ids = at::tensor({1, 21, 55, 103, 165, 241, 331, 435, 553, 685, 21, 21}, at::kLong).view({2, 6});
  at::Tensor labels = ids.clone();
  labels.index_put_({1, 2}, model::kIgnoreIndex);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    model::Transformer fused(config, dtype), plain(config, dtype);
    fused.init_random(3);
    plain.init_random(3);
    fused.set_requires_grad(true);
    plain.set_requires_grad(true);
    at::Tensor a = fused.loss(ids, labels);
    const at::Tensor logits = plain.logits(ids).to(at::kFloat);
    const at::Tensor y = model::shift_labels(labels);
    at::Tensor b = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}), {}, at::Reduction::Mean, model::kIgnoreIndex);
    EXPECT_NEAR(a.item<double>(), b.item<double>(), dtype == at::kFloat ? 1e-6 : 1e-3);
    a.backward();
    b.backward();
    const at::Tensor ga = fused.named_parameters()[0].second.grad(), gb = plain.named_parameters()[0].second.grad();
    ASSERT_EQ(fused.named_parameters()[0].first, "model.embed_tokens.weight");
    ASSERT_TRUE(ga.defined());
    EXPECT_EQ(ga.layout(), at::kStrided);
    const double scale = gb.abs().max().item<double>();
    EXPECT_LE((ga.to(at::kFloat) - gb.to(at::kFloat)).abs().max().item<double>(), (dtype == at::kFloat ? 1e-5 : 2e-2) * scale);
    // The rows looked up (e.g. id 21, three times) carry both the head's and the embedding's part.
    EXPECT_GT(ga[21].abs().sum().item<double>(), 0.0);
  }
}

TEST(ResizeVocab, NewRowsAreTheMeanOldRowsUnchanged) {
  const std::string dir = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_qwen2/model";
  model::Transformer m = model::Transformer::from_pretrained(dir, at::kFloat);
  const at::Tensor ids = at::tensor({1, 21, 55, 103, 165}, at::kLong).view({1, 5});
  at::NoGradGuard no_grad;
  const at::Tensor before = m.logits(ids);
  const at::Tensor old_embed = m.named_parameters()[0].second.clone();
  m.resize_vocab(1010);
  EXPECT_EQ(m.config().vocab_size, 1010);
  const at::Tensor embed = m.named_parameters()[0].second;
  ASSERT_EQ(embed.size(0), 1010);
  EXPECT_TRUE(embed.narrow(0, 0, 1000).equal(old_embed));
  EXPECT_LE((embed[1005] - old_embed.mean(0)).abs().max().item<double>(), 1e-6);
  const at::Tensor after = m.logits(ids);
  EXPECT_LE((after.narrow(-1, 0, 1000) - before).abs().max().item<double>(), 1e-6);
  // A new token id embeds (and is scored) like the mean row.
  EXPECT_NO_THROW(m.logits(at::tensor({1004}, at::kLong).view({1, 1})));
}

TEST(AttentionMasks, LeftPaddingAndPackedSamplesMatchSeparateRuns) {
  const std::string dir = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_llama/model";
  model::Transformer m = model::Transformer::from_pretrained(dir, at::kFloat);
  at::NoGradGuard no_grad;
  const at::Tensor a = at::tensor({5, 17, 99, 3, 250}, at::kLong).view({1, 5});
  const at::Tensor b = at::tensor({42, 7, 600}, at::kLong).view({1, 3});
  const at::Tensor la = m.logits(a), lb = m.logits(b);

  // Left padding: [pad pad b] with mask [0 0 1 1 1] and positions cumsum(mask) - 1 (as generate does).
  model::ForwardInputs pad;
  pad.attention_mask = at::tensor({0, 0, 1, 1, 1}, at::kLong).view({1, 5});
  pad.positions = at::tensor({0, 0, 0, 1, 2}, at::kLong).view({1, 5});
  const at::Tensor padded = m.logits(at::tensor({0, 0, 42, 7, 600}, at::kLong).view({1, 5}), pad);
  EXPECT_LE((padded.narrow(1, 2, 3) - lb).abs().max().item<double>(), 1e-5);

  // Packing: [a b] in one row, attention kept inside each sample, positions restarting.
  model::ForwardInputs packed;
  packed.segment_ids = at::tensor({0, 0, 0, 0, 0, 1, 1, 1}, at::kLong).view({1, 8});
  packed.positions = at::tensor({0, 1, 2, 3, 4, 0, 1, 2}, at::kLong).view({1, 8});
  const at::Tensor both = m.logits(at::cat({a, b}, 1), packed);
  EXPECT_LE((both.narrow(1, 0, 5) - la).abs().max().item<double>(), 1e-5);
  EXPECT_LE((both.narrow(1, 5, 3) - lb).abs().max().item<double>(), 1e-5);
}

TEST(Rope, ScalingVariants) {
  model::ModelConfig c = model::ModelConfig::load(std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_llama/model");
  const at::Tensor plain = model::rope_inv_freq(c);
  c.rope_scaling.type = "linear";
  c.rope_scaling.factor = 4;
  EXPECT_TRUE(model::rope_inv_freq(c).allclose(plain / 4));
  c.rope_scaling.type = "dynamic";
  EXPECT_TRUE(model::rope_inv_freq(c, c.max_position_embeddings).equal(plain));  // within range: unchanged
  const double L = static_cast<double>(c.max_position_embeddings), dim = static_cast<double>(c.head_dim);
  const double base = c.rope_theta * std::pow(4.0 * 2 * L / L - 3.0, dim / (dim - 2));
  EXPECT_NEAR(model::rope_inv_freq(c, 2 * c.max_position_embeddings)[1].item<double>(), 1.0 / std::pow(base, 2.0 / dim), 1e-7);  // float32
  // llama3: high frequencies kept, low frequencies divided by the factor.
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 64};
  const at::Tensor l3 = model::rope_inv_freq(c);
  EXPECT_EQ(l3[0].item<float>(), plain[0].item<float>());
  EXPECT_NEAR(l3[-1].item<double>(), plain[-1].item<double>() / 8, 1e-12);
}
