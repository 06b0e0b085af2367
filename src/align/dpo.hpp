// DPO and its pairwise variants (TRL's DPOTrainer, specs/algorithms.md §5): per-pair losses from
// the summed completion log-probs of the policy and the reference, and TRL's reward metrics.
//   cr = pi_c - ref_c, rr = pi_r - ref_r, d = cr - rr
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "align/hidden_objective.hpp"
#include "align/sequence_logps.hpp"
#include "model/transformer.hpp"
#include "train/objective.hpp"
#include "util/options_fwd.hpp"

namespace medgpt::align {

struct DpoOptions {
  // One or more of kDpoLossTypes, summed with `loss_weights` (default 1 each). "sft" is the
  // token-mean NLL of the chosen completions (RPO: sigmoid + rpo_alpha * sft).
  std::vector<std::string> loss_type{"sigmoid"};
  std::vector<double> loss_weights;
  double beta = 0.1;
  double label_smoothing = 0.0;  // robust, exo_pair, aot
  double discopop_tau = 0.05;
  // Reference log-probs computed once before training and cached (no reference model in training).
  bool precompute_ref_log_probs = false;
};

// --dpo.* (beta, loss_type, loss_weights, label_smoothing, rpo_alpha, precompute_ref_log_probs);
// dpo_options reads them (rpo_alpha > 0 adds an "sft" term) and checks them with check_dpo_options.
void add_dpo_options(po::options_description& d);
DpoOptions dpo_options(const po::variables_map& vm);

extern const char* const kDpoLossTypes[];
// util::Error naming `where` for an unknown type or mismatched weights.
void check_dpo_options(const DpoOptions& o, const std::string& where);

// The loss of each pair [B] (summed over the loss types, weighted). `chosen_nll`: the token-mean
// NLL over the chosen completions of the batch (only read by "sft").
at::Tensor dpo_losses(const PairLogps& policy, const PairLogps& ref, const DpoOptions& o, const at::Tensor& chosen_nll = {});

// TRL's logged values for a batch of pairs: rewards/chosen, rewards/rejected, rewards/accuracies,
// rewards/margins (means of beta * log-ratios), logps/chosen, logps/rejected.
struct DpoMetrics {
  double rewards_chosen = 0, rewards_rejected = 0, accuracy = 0, margin = 0, logps_chosen = 0, logps_rejected = 0;
  std::vector<train::Metric> named() const;  // by TRL's names, in that order
};
// From each answer's log-ratio x (reward = beta * x) and its log-prob y: DPO's x = pi - ref, y = pi;
// the reference-free ORPO and SimPO/CPO take x = y = the answer's (average) log-prob.
DpoMetrics pair_reward_metrics(const at::Tensor& x_chosen, const at::Tensor& x_rejected, const at::Tensor& y_chosen,
                               const at::Tensor& y_rejected, double beta);
DpoMetrics dpo_metrics(const PairLogps& policy, const PairLogps& ref, double beta);

// The DPO stage's objective on pair batches ([chosen rows..., rejected rows...]): the policy's and
// the reference's sequence log-probs, the per-pair losses summed and divided by the pairs of the
// global batch (a mean over pairs). The reference is a frozen copy, or (LoRA) the policy with its
// adapters disabled. Dropout stays off in both (TRL's disable_dropout).
class DpoObjective : public HiddenStateObjective {
 public:
  DpoObjective(model::Transformer& policy, const model::Transformer* reference, DpoOptions o);
  double items(const data::Batch& b) const override { return static_cast<double>(b.rows / 2); }

 private:
  at::Tensor loss_from_hidden(const data::Batch& b, const at::Tensor& h, double normalizer) override;
  const model::Transformer* reference_;
  DpoOptions o_;
};

}  // namespace medgpt::align
