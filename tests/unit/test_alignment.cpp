// The reward model, ORPO, SimPO/CPO and KTO objectives against the float64 vectors of
// specs/algorithms.md §13 and by-hand values, their gradients against finite differences, KTO's
// mismatched pairs, and the reward read at the last real token of a tiny Qwen3 reward model.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "align/cpo.hpp"
#include "align/kto.hpp"
#include "align/lm.hpp"
#include "align/orpo.hpp"
#include "align/reward.hpp"
#include "data/loader.hpp"
#include "model/lora.hpp"
#include "model/safetensors.hpp"
#include "util/error.hpp"

using namespace medgpt;

namespace {

at::Tensor d(std::vector<double> v) { return at::tensor(v, at::kDouble); }
double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double logsig(double x) { return std::log(sig(x)); }

// d f / d x_i by central differences against autograd, for every element of x.
void expect_gradient(const std::function<at::Tensor(const at::Tensor&)>& f, at::Tensor x, double tol = 1e-7) {
  x = x.clone().requires_grad_(true);
  f(x).sum().backward();
  const double h = 1e-6;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    at::NoGradGuard no_grad;
    at::Tensor xp = x.detach().clone(), xm = x.detach().clone();
    xp[i] += h;
    xm[i] -= h;
    const double fd = (f(xp).sum().item<double>() - f(xm).sum().item<double>()) / (2 * h);
    EXPECT_NEAR(x.grad()[i].item<double>(), fd, tol) << "element " << i;
  }
}

}  // namespace

TEST(Orpo, SpecVector) {
  // beta 0.1, avg_lp_c -0.5, avg_lp_r -1.2, nll 0.8.
  const at::Tensor log_odds = align::orpo_log_odds(d({-0.5}), d({-1.2}));
  EXPECT_NEAR(log_odds.item<double>(), 1.2743697117067545, 1e-14);
  const at::Tensor ratio = at::log_sigmoid(log_odds);
  EXPECT_NEAR(ratio.item<double>(), -0.24655311348287645, 1e-14);
  EXPECT_NEAR(0.8 - 0.1 * ratio.item<double>(), 0.8246553113482877, 1e-14);
}

TEST(Orpo, Log1mexpOnBothSidesOfLn2) {
  for (double x : {-5.0, -1.0, -0.7, -0.69, -0.3, -1e-3}) EXPECT_NEAR(align::log1mexp(d({x})).item<double>(), std::log(1 - std::exp(x)), 1e-13) << x;
  expect_gradient([](const at::Tensor& x) { return align::orpo_log_odds(x.narrow(0, 0, 2), x.narrow(0, 2, 2)); }, d({-0.5, -2.0, -1.2, -0.1}));
}

TEST(Simpo, SpecVectors) {
  align::CpoOptions simpo;  // simpo, beta 2, gamma 0.5, cpo_alpha 0
  EXPECT_NEAR(align::cpo_losses(d({-0.5}), d({-1.2}), simpo).item<double>(), 0.34115387473208786, 1e-14);
  align::CpoOptions cpo;
  cpo.loss_type = "sigmoid";
  cpo.beta = 0.1;
  EXPECT_NEAR(align::cpo_losses(d({-10}), d({-12}), cpo).item<double>(), 0.5981388693815918, 1e-14);
  cpo.loss_type = "hinge";
  EXPECT_NEAR(align::cpo_losses(d({-10}), d({-12}), cpo).item<double>(), 0.8, 1e-14);
  cpo.loss_type = "ipo";
  EXPECT_NEAR(align::cpo_losses(d({-0.5}), d({-1.2}), cpo).item<double>(), std::pow(0.7 - 5.0, 2), 1e-12);
  cpo.loss_type = "sigmoid";
  cpo.label_smoothing = 0.1;
  EXPECT_NEAR(align::cpo_losses(d({-10}), d({-12}), cpo).item<double>(), -0.9 * logsig(0.2) - 0.1 * logsig(-0.2), 1e-14);
}

TEST(Simpo, AveragesForSimpoAndIpoSumsOtherwise) {
  const align::PairLogps pi{d({-10.0}), d({-12.0}), d({5}), d({4})};
  align::CpoOptions o;
  auto [c, r] = align::cpo_logps(pi, o);
  EXPECT_DOUBLE_EQ(c.item<double>(), -2.0);
  EXPECT_DOUBLE_EQ(r.item<double>(), -3.0);
  o.loss_type = "sigmoid";
  std::tie(c, r) = align::cpo_logps(pi, o);
  EXPECT_DOUBLE_EQ(c.item<double>(), -10.0);
  o.loss_type = "typo";
  EXPECT_THROW(align::check_cpo_options(o, "--simpo"), util::Error);
}

TEST(Simpo, GradientsMatchFiniteDifferences) {
  for (const char* type : {"simpo", "sigmoid", "ipo"}) {
    SCOPED_TRACE(type);
    align::CpoOptions o;
    o.loss_type = type;
    o.label_smoothing = 0.1;
    expect_gradient([&](const at::Tensor& x) { return align::cpo_losses(x.narrow(0, 0, 2), x.narrow(0, 2, 2), o); }, d({-0.5, -2.0, -1.2, -0.1}));
  }
}

TEST(Kto, SpecVectors) {
  // labels [1,1,0,0], cr [0.5,-0.2,-0.3,0.4], KL log-ratios [0.2,-0.1,0.3,0] -> kl 0.1.
  const at::Tensor cr = d({0.5, -0.2, -0.3, 0.4}), good = at::tensor({1, 1, 0, 0}, at::kLong).to(at::kBool);
  const double kl = std::max(0.0, d({0.2, -0.1, 0.3, 0.0}).mean().item<double>());
  EXPECT_NEAR(kl, 0.1, 1e-15);
  align::KtoOptions o;
  const at::Tensor l = align::kto_losses(cr, good, kl, o);
  const double want[] = {0.49000133312003447, 0.5074994375506203, 0.49000133312003447, 0.5074994375506203};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(l[i].item<double>(), want[i], 1e-14);
  EXPECT_NEAR(l.mean().item<double>(), 0.4987503853353274, 1e-14);
  o.undesirable_weight = 2.0;
  EXPECT_NEAR(align::kto_losses(cr, good, kl, o).mean().item<double>(), 0.7481255780029911, 1e-14);
  o = {};
  o.loss_type = "apo_zero_unpaired";
  const at::Tensor apo = align::kto_losses(cr, good, kl, o);
  EXPECT_NEAR(apo[0].item<double>(), 1 - sig(0.05), 1e-15);
  EXPECT_NEAR(apo[3].item<double>(), sig(0.04), 1e-15);
  expect_gradient([&](const at::Tensor& x) { return align::kto_losses(x, good, 0.1, align::KtoOptions{}); }, cr);
}

TEST(Kto, MismatchedPairsTakeThePreviousRowsCompletion) {
  // Rows (prompt | completion): [1 2 | 3], [4 | 5 6], [7 8 9 | 10]; T = 5.
  data::TokenArrays rows;
  rows.append({1, 2, 3}, {0, 0, 1});
  rows.append({4, 5, 6}, {0, 1, 1});
  rows.append({7, 8, 9, 10}, {0, 0, 0, 1});
  const data::Batch b = data::batch_of(rows, data::Kind::Sft, {0, 1, 2}, 5, 0);
  const data::Batch m = align::mismatched_batch(b);
  auto row = [&](std::size_t r) {
    std::vector<std::int64_t> ids;
    for (std::size_t t = 0; t < 5; ++t)
      if (m.attention_mask[r * 5 + t]) ids.push_back(m.ids[r * 5 + t]);
    return ids;
  };
  EXPECT_EQ(row(0), (std::vector<std::int64_t>{1, 2, 10}));  // prompt 0 + completion 2
  EXPECT_EQ(row(1), (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(row(2), (std::vector<std::int64_t>{7, 8, 9, 5, 6}));
  EXPECT_EQ(m.labels[2 * 5 + 2], -100);
  EXPECT_EQ(m.labels[2 * 5 + 3], 5);
  EXPECT_EQ(m.label_tokens, 4);
}

TEST(RewardModel, BradleyTerryLossAndMetrics) {
  const at::Tensor c = d({1.0, -0.5}), r = d({0.2, 0.5});
  align::RewardOptions o;
  const at::Tensor l = align::reward_losses(c, r, o);
  EXPECT_NEAR(l[0].item<double>(), -logsig(0.8), 1e-15);
  EXPECT_NEAR(l[1].item<double>(), -logsig(-1.0), 1e-15);
  o.center_rewards_coefficient = 0.01;
  EXPECT_NEAR(align::reward_losses(c, r, o)[0].item<double>(), -logsig(0.8) + 0.01 * 1.44, 1e-15);
  const align::RewardMetrics m = align::reward_metrics(c, r);
  EXPECT_EQ(m.accuracy, 0.5);
  EXPECT_NEAR(m.margin, (0.8 - 1.0) / 2, 1e-15);
  EXPECT_NEAR(m.mean_reward, 1.2 / 4, 1e-15);
  EXPECT_EQ(m.min_reward, -0.5);
  EXPECT_EQ(m.max_reward, 1.0);
  expect_gradient([&](const at::Tensor& x) { return align::reward_losses(x.narrow(0, 0, 2), x.narrow(0, 2, 2), o); }, d({1.0, -0.5, 0.2, 0.5}));
}

TEST(RewardModel, ScoreReadAtTheLastRealToken) {
  const std::string tiny = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_qwen3/model";
  model::ModelConfig config = model::ModelConfig::load(tiny);
  config.make_reward_model();
  EXPECT_EQ(config.raw["architectures"][0], "Qwen3ForSequenceClassification");
  model::Transformer rm(config, at::kFloat);
  model::NamedTensors w = model::read_safetensors_dir(tiny);
  w.emplace_back("score.weight", align::new_score_weight(config, 7));
  rm.load(w, tiny);
  EXPECT_EQ(rm.named_parameters().back().first, "score.weight");
  EXPECT_THROW(rm.lm_head(), util::Error);  // a classifier has no LM head
  EXPECT_NEAR(rm.score_head().std().item<double>(), config.initializer_range, 0.3 * config.initializer_range);

  data::TokenArrays rows;
  rows.append({5, 9, 14, 3}, {0, 0, 1, 1});
  rows.append({8, 2}, {0, 1});
  // Padded to 6 with the rows together, and each alone unpadded: the same rewards.
  const at::Tensor together = align::sequence_rewards(rm, data::batch_of(rows, data::Kind::Sft, {0, 1}, 6, 0));
  for (std::int64_t r = 0; r < 2; ++r) {
    const std::size_t len = rows.offsets[static_cast<std::size_t>(r) + 1] - rows.offsets[static_cast<std::size_t>(r)];
    const at::Tensor alone = align::sequence_rewards(rm, data::batch_of(rows, data::Kind::Sft, {r}, len, 0));
    EXPECT_NEAR(together[r].item<double>(), alone[0].item<double>(), 1e-5);
    // By hand: score . hidden at the last token.
    const at::Tensor ids = at::tensor(std::vector<std::int64_t>(rows.tokens.begin() + static_cast<std::ptrdiff_t>(rows.offsets[static_cast<std::size_t>(r)]),
                                                                rows.tokens.begin() + static_cast<std::ptrdiff_t>(rows.offsets[static_cast<std::size_t>(r) + 1])),
                                      at::kLong).unsqueeze(0);
    const double want = (rm.hidden(ids)[0][static_cast<std::int64_t>(len) - 1] * rm.score_head()[0]).sum().item<double>();
    EXPECT_NEAR(alone[0].item<double>(), want, 1e-5);
  }
  // A classifier's config is recognised again when read back.
  const model::ModelConfig again = model::ModelConfig::from_json(config.raw, "config.json");
  EXPECT_EQ(again.num_labels, 1);
  EXPECT_EQ(again.num_parameters(), config.num_parameters());
}

TEST(Reference, LoraDisabledBaseEqualsAFrozenCopy) {
  // A LoRA policy whose adapters have moved away from zero: its reference pass (adapters disabled)
  // must give the frozen base's log-probs, and its own pass must differ.
  const std::string tiny = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_qwen3/model";
  model::Transformer base = model::Transformer::from_pretrained(tiny, at::kFloat);
  model::Transformer policy = model::Transformer::from_pretrained(tiny, at::kFloat);
  model::apply_lora(policy, model::LoraConfig{}, 3);
  {
    at::NoGradGuard no_grad;
    for (auto& [name, t] : model::lora_parameters(policy)) t.normal_(0.0, 0.05);
  }
  data::TokenArrays rows;
  rows.append({5, 9, 14, 3, 7}, {0, 0, 1, 1, 1});
  rows.append({8, 2, 6}, {0, 1, 1});
  const data::Batch b = data::batch_of(rows, data::Kind::Sft, {0, 1}, 6, 0);
  const at::Tensor ref = align::reference_row_logps(policy, nullptr, b).sum, frozen = align::row_logps(base, b).sum;
  EXPECT_TRUE(at::equal(ref, frozen)) << ref << frozen;
  EXPECT_GT((align::row_logps(policy, b).sum - frozen).abs().max().item<double>(), 1e-3);  // adapters back on
  // By hand: the label tokens' log-probs of row 0 (labels at positions 2..4, predicted from 1..3).
  const at::Tensor logp = at::log_softmax(base.logits(at::tensor({5, 9, 14, 3, 7}, at::kLong).unsqueeze(0))[0].to(at::kDouble), -1);
  const double want = logp[1][14].item<double>() + logp[2][3].item<double>() + logp[3][7].item<double>();
  EXPECT_NEAR(frozen[0].item<double>(), want, 1e-5);
  EXPECT_EQ(align::row_logps(base, b).count[0].item<float>(), 3.0f);
}

TEST(Reference, AdaptersBackOnWhenTheReferencePassThrows) {
  // A reference pass that fails (here: a token id past the vocabulary) must not leave the policy's
  // adapters off, or every later step would train a model that ignores them.
  const std::string tiny = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_qwen3/model";
  model::Transformer policy = model::Transformer::from_pretrained(tiny, at::kFloat);
  model::apply_lora(policy, model::LoraConfig{}, 3);
  data::TokenArrays rows;
  rows.append({5, 9, 1000000, 3}, {0, 1, 1, 1});
  const data::Batch b = data::batch_of(rows, data::Kind::Sft, {0}, 4, 0);
  EXPECT_ANY_THROW(align::reference_row_logps(policy, nullptr, b));
  for (const model::Block& block : policy.blocks()) {
    ASSERT_TRUE(block.q.lora);
    EXPECT_TRUE(block.q.lora->enabled);
    EXPECT_TRUE(block.down.lora->enabled);
  }
}
