#include "align/reward.hpp"

#include <boost/program_options.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include "align/lm.hpp"
#include "align/sequence_logps.hpp"
#include "model/lora.hpp"

namespace medgpt::align {

void add_reward_options(po::options_description& d) {
  d.add_options()("rm.center_rewards_coefficient", po::value<double>()->default_value(0.0), "rm: adds coef x mean((r_chosen + r_rejected)^2) (0: off)");
}

RewardOptions reward_options(const po::variables_map& vm) {
  RewardOptions o;
  const double c = vm["rm.center_rewards_coefficient"].as<double>();
  if (c < 0) util::fail("--rm.center_rewards_coefficient", "must not be negative", "e.g. 0.01, or 0 for none");
  if (c > 0) o.center_rewards_coefficient = c;
  return o;
}

at::Tensor sequence_rewards(const model::Transformer& m, const data::Batch& padded) {
  const data::Batch b = trim_padding(padded);
  return sequence_rewards_from_hidden(m, m.hidden(batch_tensor(b.ids, b), padded_inputs(b)), b);
}

at::Tensor sequence_rewards_from_hidden(const model::Transformer& m, const at::Tensor& h, const data::Batch& b) {
  std::vector<std::int64_t> last(b.rows, 0);
  for (std::size_t r = 0; r < b.rows; ++r)
    for (std::size_t t = 0; t < b.seq_len; ++t)
      if (b.attention_mask[r * b.seq_len + t]) last[r] = static_cast<std::int64_t>(t);
  const at::Tensor rows = at::arange(static_cast<std::int64_t>(b.rows), at::kLong);
  const at::Tensor at_last = h.index({rows, at::tensor(last, at::kLong)});  // [R, H]
  return at::linear(at_last, m.score_head()).to(at::kFloat).select(-1, 0);
}

at::Tensor reward_losses(const at::Tensor& chosen, const at::Tensor& rejected, const RewardOptions& o) {
  at::Tensor l = -at::log_sigmoid(chosen - rejected);
  if (o.center_rewards_coefficient) l = l + *o.center_rewards_coefficient * (chosen + rejected).pow(2);
  return l;
}

RewardMetrics reward_metrics(const at::Tensor& chosen, const at::Tensor& rejected) {
  at::NoGradGuard no_grad;
  const at::Tensor c = chosen.detach().to(at::kDouble), r = rejected.detach().to(at::kDouble), all = at::cat({c, r});
  RewardMetrics m;
  m.accuracy = (c > r).to(at::kDouble).mean().item<double>();
  m.margin = (c - r).mean().item<double>();
  m.mean_reward = all.mean().item<double>();
  m.min_reward = all.min().item<double>();
  m.max_reward = all.max().item<double>();
  m.chosen = c.mean().item<double>();
  m.rejected = r.mean().item<double>();
  return m;
}

at::Tensor new_score_weight(const model::ModelConfig& config, std::uint64_t seed) {
  // A generator of its own: the head does not depend on what else drew from the default one.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed ^ 0x5c0e5c0e5c0eULL);
  return at::empty({1, config.hidden_size}, at::kFloat).normal_(0.0, config.initializer_range, gen);
}

RewardObjective::RewardObjective(model::Transformer& model, RewardOptions o) : HiddenStateObjective(model, false), o_(o) {}

at::Tensor RewardObjective::loss_from_hidden(const data::Batch& b, const at::Tensor& h, double normalizer) {
  const at::Tensor r = sequence_rewards_from_hidden(model_, h, b);
  const std::int64_t n = r.size(0) / 2;
  const at::Tensor chosen = r.narrow(0, 0, n), rejected = r.narrow(0, n, n);
  const RewardMetrics m = reward_metrics(chosen, rejected);
  record("accuracy", m.accuracy);
  record("margin", m.margin);
  record("mean_reward", m.mean_reward);
  // min/max over the logging window would need a min/max reduction; these are batch means of them.
  record("min_reward", m.min_reward);
  record("max_reward", m.max_reward);
  record("rewards/chosen", m.chosen);
  record("rewards/rejected", m.rejected);
  return reward_losses(chosen, rejected, o_).sum() / normalizer;
}

}  // namespace medgpt::align
