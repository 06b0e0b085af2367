#include "align/orpo.hpp"

#include <boost/program_options.hpp>

#include <cmath>

#include "align/dpo.hpp"
#include "align/sequence_logps.hpp"
#include "model/lora.hpp"
#include "util/error.hpp"

namespace medgpt::align {

at::Tensor log1mexp(const at::Tensor& x) {
  // Each branch sees only inputs on its side, so neither produces inf/nan gradients for at::where.
  const double ln2 = std::log(2.0);
  const at::Tensor small = x.clamp_max(-ln2), large = x.clamp(-ln2, -1e-30);
  return at::where(x < -ln2, at::log1p(-at::exp(small)), at::log(-at::expm1(large)));
}

at::Tensor orpo_log_odds(const at::Tensor& c, const at::Tensor& r) { return (c - r) - (log1mexp(c) - log1mexp(r)); }

void add_orpo_options(po::options_description& d) {
  d.add_options()("orpo.beta", po::value<double>()->default_value(0.1, "0.1"), "orpo: lambda, the weight of the odds-ratio term");
}

OrpoOptions orpo_options(const po::variables_map& vm) {
  OrpoOptions o;
  o.beta = vm["orpo.beta"].as<double>();
  if (!(o.beta > 0)) util::fail("--orpo.beta", "must be positive", "e.g. 0.1");
  return o;
}

OrpoObjective::OrpoObjective(model::Transformer& model, OrpoOptions o) : HiddenStateObjective(model, true), o_(o) {}

at::Tensor OrpoObjective::loss_from_hidden(const data::Batch& b, const at::Tensor& h, double normalizer) {
  const RowLogps rows = row_logps_from_hidden(model_, h, b, /*all_tokens=*/true);
  const PairLogps pi = pair_logps(rows);
  const std::int64_t n = pi.chosen.size(0);
  // The chosen rows' token-mean NLL over the micro-batch, counted once per pair.
  const at::Tensor nll = -rows.all_sum.narrow(0, 0, n).sum() / rows.all_count.narrow(0, 0, n).sum().clamp_min(1.0);
  const at::Tensor a_c = pi.chosen_mean(), a_r = pi.rejected_mean();
  const at::Tensor log_odds = orpo_log_odds(a_c, a_r), ratio = at::log_sigmoid(log_odds);
  record(pair_reward_metrics(a_c, a_r, a_c, a_r, o_.beta).named());
  record("nll_loss", nll.item<double>());
  record("log_odds_ratio", ratio.detach().mean().item<double>());
  record("log_odds_chosen", log_odds.detach().mean().item<double>());
  return (static_cast<double>(n) * nll - o_.beta * ratio.sum()) / normalizer;
}

}  // namespace medgpt::align
