// Reward modelling (TRL's RewardTrainer, specs/algorithms.md §4): a scalar head `score.weight`
// [1, hidden] on the last hidden state (transformers' *ForSequenceClassification), the reward of a
// sequence read at its last real token, and the Bradley-Terry loss on pairs
//   loss = -log sigmoid(r_c - r_r) + center_rewards_coefficient * (r_c + r_r)^2
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "align/hidden_objective.hpp"
#include "model/transformer.hpp"
#include "train/objective.hpp"
#include "util/options_fwd.hpp"

namespace medgpt::align {

struct RewardOptions {
  std::optional<double> center_rewards_coefficient;  // TRL's default None
};

// --rm.center_rewards_coefficient (0: none), read and checked (not negative).
void add_reward_options(po::options_description& d);
RewardOptions reward_options(const po::variables_map& vm);

// The reward [rows] float32 of each row of a batch: score(hidden state at the row's last real token).
at::Tensor sequence_rewards(const model::Transformer& m, const data::Batch& b);
// The same from the final hidden states h [R, T, H] of a batch cut by trim_padding.
at::Tensor sequence_rewards_from_hidden(const model::Transformer& m, const at::Tensor& h, const data::Batch& b);

// Per-pair losses [B] from the rewards of the chosen and the rejected rows.
at::Tensor reward_losses(const at::Tensor& chosen, const at::Tensor& rejected, const RewardOptions& o);

// TRL's logged values for a batch: accuracy (strict r_c > r_r), margin, and the mean, min and max
// reward over all 2B rows; rewards/chosen and rewards/rejected are the mean rewards of each half.
struct RewardMetrics {
  double accuracy = 0, margin = 0, mean_reward = 0, min_reward = 0, max_reward = 0, chosen = 0, rejected = 0;
};
RewardMetrics reward_metrics(const at::Tensor& chosen, const at::Tensor& rejected);

// The new head of a reward model made from a causal LM: normal(0, initializer_range), seeded.
at::Tensor new_score_weight(const model::ModelConfig& config, std::uint64_t seed);

class RewardObjective : public HiddenStateObjective {
 public:
  RewardObjective(model::Transformer& model, RewardOptions o);
  double items(const data::Batch& b) const override { return static_cast<double>(b.rows / 2); }

 private:
  at::Tensor loss_from_hidden(const data::Batch& b, const at::Tensor& h, double normalizer) override;
  RewardOptions o_;
};

}  // namespace medgpt::align
