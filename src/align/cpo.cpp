#include "align/cpo.hpp"

#include <boost/program_options.hpp>

#include "align/dpo.hpp"
#include "model/lora.hpp"
#include "util/error.hpp"

namespace medgpt::align {

void add_simpo_options(po::options_description& d) {
  d.add_options()
      ("simpo.loss_type", po::value<std::string>()->default_value("simpo"), "simpo: simpo, or CPO's sigmoid, hinge, ipo")
      ("simpo.beta", po::value<double>()->default_value(2.0), "simpo: beta (the SimPO paper's 2.0-2.5; CPO uses 0.1)")
      ("simpo.gamma", po::value<double>()->default_value(0.5), "simpo: target reward margin gamma")
      ("simpo.cpo_alpha", po::value<double>()->default_value(0.0), "simpo: weight of the chosen NLL (0: pure SimPO, 1: CPO-SimPO)")
      ("simpo.label_smoothing", po::value<double>()->default_value(0.0), "simpo: label smoothing");
}

CpoOptions simpo_options(const po::variables_map& vm) {
  CpoOptions o;
  o.loss_type = vm["simpo.loss_type"].as<std::string>();
  o.beta = vm["simpo.beta"].as<double>();
  o.simpo_gamma = vm["simpo.gamma"].as<double>();
  o.cpo_alpha = vm["simpo.cpo_alpha"].as<double>();
  o.label_smoothing = vm["simpo.label_smoothing"].as<double>();
  check_cpo_options(o, "--simpo");
  return o;
}

void check_cpo_options(const CpoOptions& o, const std::string& where) {
  if (o.loss_type != "sigmoid" && o.loss_type != "hinge" && o.loss_type != "ipo" && o.loss_type != "simpo")
    util::fail(where + ".loss_type", "unknown \"" + o.loss_type + "\"", "use simpo, sigmoid, hinge or ipo");
  if (!(o.beta > 0)) util::fail(where + ".beta", "must be positive", "e.g. 2.0 for SimPO, 0.1 for CPO");
  if (o.cpo_alpha < 0) util::fail(where + ".cpo_alpha", "must not be negative", "0 for pure SimPO, 1 for CPO");
  if (o.label_smoothing < 0 || o.label_smoothing >= 0.5) util::fail(where + ".label_smoothing", "must be in [0, 0.5)", "e.g. 0.1");
}

std::pair<at::Tensor, at::Tensor> cpo_logps(const PairLogps& pi, const CpoOptions& o) {
  if (o.loss_type == "ipo" || o.loss_type == "simpo") return {pi.chosen_mean(), pi.rejected_mean()};
  return {pi.chosen, pi.rejected};
}

at::Tensor cpo_losses(const at::Tensor& c, const at::Tensor& r, const CpoOptions& o) {
  const double beta = o.beta, ls = o.label_smoothing;
  at::Tensor z = c - r;
  if (o.loss_type == "hinge") return at::relu(1.0 - beta * z);
  if (o.loss_type == "ipo") return (z - 1.0 / (2.0 * beta)).pow(2);
  if (o.loss_type == "simpo") z = z - o.simpo_gamma / beta;
  return -(1.0 - ls) * at::log_sigmoid(beta * z) - ls * at::log_sigmoid(-beta * z);
}

CpoObjective::CpoObjective(model::Transformer& model, CpoOptions o) : HiddenStateObjective(model, true), o_(std::move(o)) {}

at::Tensor CpoObjective::loss_from_hidden(const data::Batch& b, const at::Tensor& h, double normalizer) {
  const PairLogps pi = pair_logps(row_logps_from_hidden(model_, h, b));
  const std::int64_t n = pi.chosen.size(0);
  const auto [c, r] = cpo_logps(pi, o_);
  // The chosen completions' token-mean NLL over the micro-batch, counted once per pair.
  const at::Tensor nll = -pi.chosen.sum() / pi.chosen_tokens.sum().clamp_min(1.0);
  record(pair_reward_metrics(c, r, c, r, o_.beta).named());
  record("nll_loss", nll.item<double>());
  at::Tensor total = cpo_losses(c, r, o_).sum();
  if (o_.cpo_alpha != 0) total = total + o_.cpo_alpha * static_cast<double>(n) * nll;
  return total / normalizer;
}

}  // namespace medgpt::align
