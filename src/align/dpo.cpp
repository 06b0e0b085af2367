#include "align/dpo.hpp"

#include <boost/program_options.hpp>

#include <cmath>

#include "model/lora.hpp"
#include "util/error.hpp"

namespace medgpt::align {

const char* const kDpoLossTypes[] = {"sigmoid",  "hinge",    "ipo",      "robust",    "exo_pair",     "nca_pair", "bco_pair",
                                     "sppo_hard", "apo_zero", "apo_down", "discopop", "sigmoid_norm", "aot",      "sft",
                                     nullptr};

namespace {

bool known(const std::string& t) {
  for (const char* const* k = kDpoLossTypes; *k; ++k)
    if (t == *k) return true;
  return false;
}

at::Tensor logsig(const at::Tensor& x) { return at::log_sigmoid(x); }

// One loss type, per pair.
at::Tensor one_loss(const std::string& type, const PairLogps& pi, const PairLogps& ref, const DpoOptions& o, const at::Tensor& nll) {
  const double beta = o.beta, ls = o.label_smoothing;
  const at::Tensor cr = pi.chosen - ref.chosen, rr = pi.rejected - ref.rejected, d = cr - rr;
  if (type == "sigmoid") return -logsig(beta * d);
  if (type == "hinge") return at::relu(1.0 - beta * d);
  if (type == "ipo") {
    const at::Tensor nc = pi.chosen_tokens.to(cr.scalar_type()).clamp_min(1), nr = pi.rejected_tokens.to(cr.scalar_type()).clamp_min(1);
    return (cr / nc - rr / nr - 1.0 / (2.0 * beta)).pow(2);  // per-token log-ratios
  }
  if (type == "robust") return (-(1.0 - ls) * logsig(beta * d) + ls * logsig(-beta * d)) / (1.0 - 2.0 * ls);
  if (type == "exo_pair")
    return at::sigmoid(beta * d) * (logsig(beta * d) - std::log1p(-ls)) + at::sigmoid(-beta * d) * (logsig(-beta * d) - std::log(ls));
  if (type == "nca_pair") return -logsig(beta * cr) - 0.5 * logsig(-beta * cr) - 0.5 * logsig(-beta * rr);
  if (type == "bco_pair") return -logsig(beta * cr) - logsig(-beta * rr);
  if (type == "sppo_hard") return (cr - 0.5 / beta).pow(2) + (rr + 0.5 / beta).pow(2);
  if (type == "apo_zero") return (1.0 - at::sigmoid(beta * cr)) + at::sigmoid(beta * rr);
  if (type == "apo_down") return at::sigmoid(beta * cr) + (1.0 - at::sigmoid(beta * d));
  if (type == "discopop") {
    const at::Tensor z = beta * d, m = at::sigmoid(z / o.discopop_tau);
    return -logsig(z) * (1.0 - m) + at::exp(-z) * m;
  }
  if (type == "sigmoid_norm") {
    const at::Tensor nc = pi.chosen_tokens.to(cr.scalar_type()).clamp_min(1), nr = pi.rejected_tokens.to(cr.scalar_type()).clamp_min(1);
    return -logsig(beta * (cr / nc - rr / nr));
  }
  if (type == "aot") {  // the batch's policy and reference margins, each sorted
    const at::Tensor delta = std::get<0>(at::sort(pi.chosen - pi.rejected)) - std::get<0>(at::sort(ref.chosen - ref.rejected));
    return -(1.0 - ls) * logsig(beta * delta) - ls * logsig(-beta * delta);
  }
  if (type == "sft") {
    if (!nll.defined()) util::fail("dpo", "the sft loss needs the chosen NLL", "internal error");
    return nll.expand_as(cr);
  }
  util::fail("--dpo.loss_type", "unknown \"" + type + "\"", "see `medgpt train --help`");
}

}  // namespace

void check_dpo_options(const DpoOptions& o, const std::string& where) {
  if (o.loss_type.empty()) util::fail(where + ".loss_type", "is empty", "e.g. sigmoid");
  for (const auto& t : o.loss_type)
    if (!known(t)) {
      std::string all;
      for (const char* const* k = kDpoLossTypes; *k; ++k) all += std::string(all.empty() ? "" : ", ") + *k;
      util::fail(where + ".loss_type", "unknown \"" + t + "\"", "use one or more of: " + all);
    }
  if (!o.loss_weights.empty() && o.loss_weights.size() != o.loss_type.size())
    util::fail(where + ".loss_weights", "has " + std::to_string(o.loss_weights.size()) + " weights for " + std::to_string(o.loss_type.size()) + " loss types",
               "give one weight per loss type");
  if (!(o.beta > 0)) util::fail(where + ".beta", "must be positive", "e.g. 0.1");
  if (o.label_smoothing < 0 || o.label_smoothing >= 0.5) util::fail(where + ".label_smoothing", "must be in [0, 0.5)", "e.g. 0.1");
}

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

double parse_number(const std::string& s, const std::string& option) {
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  util::fail(option, "\"" + s + "\" is not a number", "give comma-separated numbers, e.g. 1,0.5");
}

}  // namespace

void add_dpo_options(po::options_description& d) {
  d.add_options()
      ("dpo.beta", po::value<double>()->default_value(0.1, "0.1"), "dpo: beta (strength of the reference)")
      ("dpo.loss_type", po::value<std::string>()->default_value("sigmoid"), "dpo: sigmoid, hinge, ipo, robust, exo_pair, nca_pair, bco_pair, sppo_hard, apo_zero, apo_down, discopop, sigmoid_norm, aot, sft; several comma-separated are summed")
      ("dpo.loss_weights", po::value<std::string>()->default_value(""), "dpo: one weight per loss type, comma-separated (default 1 each)")
      ("dpo.label_smoothing", po::value<double>()->default_value(0.0), "dpo: label smoothing for robust, exo_pair, aot")
      ("dpo.rpo_alpha", po::value<double>()->default_value(0.0), "dpo: RPO, adds rpo_alpha x the chosen NLL (0: off)")
      ("dpo.precompute_ref_log_probs", po::value<bool>()->default_value(false)->implicit_value(true), "dpo: reference log-probs computed once, cached in OUT/data/, no reference model during training");
}

DpoOptions dpo_options(const po::variables_map& vm) {
  DpoOptions o;
  o.beta = vm["dpo.beta"].as<double>();
  o.label_smoothing = vm["dpo.label_smoothing"].as<double>();
  o.loss_type = split_list(vm["dpo.loss_type"].as<std::string>());
  for (const auto& w : split_list(vm["dpo.loss_weights"].as<std::string>())) o.loss_weights.push_back(parse_number(w, "--dpo.loss_weights"));
  const double rpo = vm["dpo.rpo_alpha"].as<double>();
  if (rpo < 0) util::fail("--dpo.rpo_alpha", "must not be negative", "e.g. 1.0, or 0 for none");
  if (rpo > 0) {  // RPO = sigmoid + rpo_alpha * sft
    if (o.loss_weights.empty()) o.loss_weights.assign(o.loss_type.size(), 1.0);
    o.loss_type.push_back("sft");
    o.loss_weights.push_back(rpo);
  }
  o.precompute_ref_log_probs = vm["dpo.precompute_ref_log_probs"].as<bool>();
  check_dpo_options(o, "--dpo");
  return o;
}

at::Tensor dpo_losses(const PairLogps& policy, const PairLogps& ref, const DpoOptions& o, const at::Tensor& chosen_nll) {
  at::Tensor total;
  for (std::size_t i = 0; i < o.loss_type.size(); ++i) {
    const double w = o.loss_weights.empty() ? 1.0 : o.loss_weights[i];
    const at::Tensor l = w * one_loss(o.loss_type[i], policy, ref, o, chosen_nll);
    total = total.defined() ? total + l : l;
  }
  return total;
}

DpoMetrics pair_reward_metrics(const at::Tensor& x_chosen, const at::Tensor& x_rejected, const at::Tensor& y_chosen,
                               const at::Tensor& y_rejected, double beta) {
  at::NoGradGuard no_grad;
  const at::Tensor rc = beta * x_chosen.detach().to(at::kDouble), rj = beta * x_rejected.detach().to(at::kDouble);
  DpoMetrics m;
  m.rewards_chosen = rc.mean().item<double>();
  m.rewards_rejected = rj.mean().item<double>();
  m.accuracy = (rc > rj).to(at::kDouble).mean().item<double>();
  m.margin = (rc - rj).mean().item<double>();
  m.logps_chosen = y_chosen.detach().to(at::kDouble).mean().item<double>();
  m.logps_rejected = y_rejected.detach().to(at::kDouble).mean().item<double>();
  return m;
}

DpoMetrics dpo_metrics(const PairLogps& policy, const PairLogps& ref, double beta) {
  return pair_reward_metrics(policy.chosen - ref.chosen, policy.rejected - ref.rejected, policy.chosen, policy.rejected, beta);
}

std::vector<train::Metric> DpoMetrics::named() const {
  return {{"rewards/chosen", rewards_chosen},   {"rewards/rejected", rewards_rejected}, {"rewards/accuracies", accuracy},
          {"rewards/margins", margin},          {"logps/chosen", logps_chosen},         {"logps/rejected", logps_rejected}};
}

DpoObjective::DpoObjective(model::Transformer& policy, const model::Transformer* reference, DpoOptions o)
    : HiddenStateObjective(policy, true), reference_(reference), o_(std::move(o)) {}

at::Tensor DpoObjective::loss_from_hidden(const data::Batch& b, const at::Tensor& h, double normalizer) {
  const PairLogps pi = pair_logps(row_logps_from_hidden(model_, h, b));
  // Precomputed (--dpo.precompute_ref_log_probs): carried by the batch's rows.
  const PairLogps ref = b.ref_logps.size() == b.rows ? pair_logps({at::tensor(b.ref_logps, at::kDouble).to(at::kFloat), at::cat({pi.chosen_tokens, pi.rejected_tokens}), {}, {}})
                                                     : pair_logps(reference_row_logps(model_, reference_, b));
  const at::Tensor nll = -pi.chosen.sum() / pi.chosen_tokens.sum().clamp_min(1.0);
  record(dpo_metrics(pi, ref, o_.beta).named());
  return dpo_losses(pi, ref, o_, nll).sum() / normalizer;
}

}  // namespace medgpt::align
