// DPO losses and metrics against the float64 vectors of specs/algorithms.md §13 and by-hand values,
// and their gradients against finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "align/dpo.hpp"
#include "util/error.hpp"

using namespace medgpt;

namespace {

at::Tensor d1(double x) { return at::full({1}, x, at::kDouble); }

// The §13 pair: pi_c=-10, pi_r=-12, ref_c=-10.5, ref_r=-11.5 (cr=0.5, rr=-0.5, d=1), Nc=5, Nr=4.
std::pair<align::PairLogps, align::PairLogps> pair13() {
  align::PairLogps pi{d1(-10.0), d1(-12.0), d1(5), d1(4)}, ref{d1(-10.5), d1(-11.5), d1(5), d1(4)};
  return {pi, ref};
}

double loss(const std::string& type, double ls = 0.0, const at::Tensor& nll = {}, std::vector<double> weights = {}) {
  auto [pi, ref] = pair13();
  align::DpoOptions o;
  o.loss_type = {type};
  if (type == "sigmoid+sft") o.loss_type = {"sigmoid", "sft"};
  o.loss_weights = std::move(weights);
  o.label_smoothing = ls;
  return align::dpo_losses(pi, ref, o, nll).item<double>();
}

}  // namespace

TEST(Dpo, SpecVectors) {
  EXPECT_NEAR(loss("sigmoid"), 0.6443966600735709, 1e-14);
  EXPECT_NEAR(loss("hinge"), 0.9, 1e-14);
  EXPECT_NEAR(loss("robust", 0.1), 0.6318966600735709, 1e-14);
  EXPECT_NEAR(loss("bco_pair"), 1.3369192960265726, 1e-14);
  EXPECT_NEAR(loss("apo_zero"), 0.9750052070315793, 1e-14);
  EXPECT_NEAR(loss("ipo"), 22.800625, 1e-12);  // (0.5/5 + 0.5/4 - 5)^2
  EXPECT_NEAR(loss("sigmoid+sft", 0.0, d1(2.0), {1.0, 1.0}), 2.644396660073571, 1e-14);
  auto [pi, ref] = pair13();
  const align::DpoMetrics m = align::dpo_metrics(pi, ref, 0.1);
  EXPECT_NEAR(m.rewards_chosen, 0.05, 1e-15);
  EXPECT_NEAR(m.rewards_rejected, -0.05, 1e-15);
  EXPECT_NEAR(m.margin, 0.1, 1e-15);
  EXPECT_EQ(m.accuracy, 1.0);
  EXPECT_EQ(m.logps_chosen, -10.0);
  EXPECT_EQ(m.logps_rejected, -12.0);
}

TEST(Dpo, ByHand) {
  const double b = 0.1, cr = 0.5, rr = -0.5, d = 1.0;
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  auto logsig = [&](double x) { return std::log(sig(x)); };
  EXPECT_NEAR(loss("nca_pair"), -logsig(b * cr) - 0.5 * logsig(-b * cr) - 0.5 * logsig(-b * rr), 1e-14);
  EXPECT_NEAR(loss("sppo_hard"), std::pow(cr - 5.0, 2) + std::pow(rr + 5.0, 2), 1e-12);
  EXPECT_NEAR(loss("apo_down"), sig(b * cr) + 1.0 - sig(b * d), 1e-14);
  EXPECT_NEAR(loss("sigmoid_norm"), -logsig(b * (cr / 5 - rr / 4)), 1e-14);
  const double ls = 0.2;
  EXPECT_NEAR(loss("exo_pair", ls), sig(b * d) * (logsig(b * d) - std::log1p(-ls)) + sig(-b * d) * (logsig(-b * d) - std::log(ls)), 1e-14);
  const double z = b * d, m = sig(z / 0.05);
  EXPECT_NEAR(loss("discopop"), -logsig(z) * (1 - m) + std::exp(-z) * m, 1e-14);
  // One pair: aot's sorted margins are the pair's own, so it is robust-free sigmoid on d.
  EXPECT_NEAR(loss("aot"), -logsig(b * d), 1e-14);
}

TEST(Dpo, PolicyEqualsReferenceAtTheStart) {
  // First step, policy == reference: sigmoid = ln 2, ipo = (1/(2 beta))^2, hinge = 1, rewards 0.
  align::PairLogps p{d1(-7.0), d1(-9.0), d1(3), d1(3)};
  align::DpoOptions o;
  EXPECT_NEAR(align::dpo_losses(p, p, o).item<double>(), std::log(2.0), 1e-15);
  o.loss_type = {"ipo"};
  EXPECT_NEAR(align::dpo_losses(p, p, o).item<double>(), 25.0, 1e-12);
  o.loss_type = {"hinge"};
  EXPECT_EQ(align::dpo_losses(p, p, o).item<double>(), 1.0);
  const align::DpoMetrics m = align::dpo_metrics(p, p, 0.1);
  EXPECT_EQ(m.rewards_chosen, 0.0);
  EXPECT_EQ(m.margin, 0.0);
  EXPECT_EQ(m.accuracy, 0.0);  // strict >
}

TEST(Dpo, GradientsMatchFiniteDifferences) {
  for (const char* type : {"sigmoid", "ipo", "robust", "hinge", "bco_pair", "apo_down", "discopop"}) {
    SCOPED_TRACE(type);
    align::DpoOptions o;
    o.loss_type = {type};
    o.label_smoothing = 0.1;
    const at::Tensor ref_c = at::tensor({-10.5, -3.0}, at::kDouble), ref_r = at::tensor({-11.5, -4.0}, at::kDouble);
    const at::Tensor n = at::tensor({5.0, 2.0}, at::kDouble);
    auto f = [&](const at::Tensor& c, const at::Tensor& r) {
      return align::dpo_losses({c, r, n, n}, {ref_c, ref_r, n, n}, o).sum();
    };
    at::Tensor c = at::tensor({-10.0, -3.3}, at::kDouble).requires_grad_(true), r = at::tensor({-12.0, -3.1}, at::kDouble).requires_grad_(true);
    f(c, r).backward();
    const double h = 1e-6;
    for (int i = 0; i < 2; ++i) {
      at::NoGradGuard no_grad;
      at::Tensor cp = c.detach().clone(), cm = c.detach().clone();
      cp[i] += h;
      cm[i] -= h;
      const double fd = (f(cp, r.detach()).item<double>() - f(cm, r.detach()).item<double>()) / (2 * h);
      EXPECT_NEAR(c.grad()[i].item<double>(), fd, 1e-6);
    }
  }
}

TEST(Dpo, OptionsAreChecked) {
  align::DpoOptions o;
  o.loss_type = {"sigmoid", "typo"};
  EXPECT_THROW(align::check_dpo_options(o, "--dpo"), util::Error);
  o.loss_type = {"sigmoid", "sft"};
  o.loss_weights = {1.0};
  EXPECT_THROW(align::check_dpo_options(o, "--dpo"), util::Error);
  o.loss_weights = {1.0, 0.5};
  EXPECT_NO_THROW(align::check_dpo_options(o, "--dpo"));
  o.label_smoothing = 0.5;
  EXPECT_THROW(align::check_dpo_options(o, "--dpo"), util::Error);
}
