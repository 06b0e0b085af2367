// KTO (TRL's KTOTrainer, specs/algorithms.md §8): unpaired completions labelled desirable or not.
// With cr = logp - ref_logp (summed completion log-probs) and a KL estimate from mismatched pairs,
//   desirable:   w_d * (1 - sigmoid(beta * (cr - kl)))
//   undesirable: w_u * (1 - sigmoid(beta * (kl - cr)))
//   kl = max(0, mean over the micro-batch and the dp ranks of (policy - reference) log-probs of
//        each prompt with the previous row's completion), no gradient.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "align/sequence_logps.hpp"
#include "parallel/comm.hpp"
#include "model/transformer.hpp"
#include "train/objective.hpp"
#include "util/options_fwd.hpp"

namespace medgpt::align {

struct KtoOptions {
  std::string loss_type = "kto";  // kto | apo_zero_unpaired (no KL term)
  double beta = 0.1;
  double desirable_weight = 1.0, undesirable_weight = 1.0;
};

void check_kto_options(const KtoOptions& o, const std::string& where);
// --kto.* (loss_type, beta, desirable_weight, undesirable_weight), read and checked.
void add_kto_options(po::options_description& d);
KtoOptions kto_options(const po::variables_map& vm);

// Per-row losses [N] from the log-ratios cr [N], the labels (true = desirable) and the KL estimate.
at::Tensor kto_losses(const at::Tensor& cr, const at::Tensor& desirable, double kl, const KtoOptions& o);

// The rows of a KTO batch with each prompt followed by the previous row's completion (row 0 takes
// the last row's): TRL's mismatched pairs for the KL estimate.
data::Batch mismatched_batch(const data::Batch& b);

class KtoObjective : public train::Objective {
 public:
  // `dp`: the KL estimate is averaged over the data-parallel ranks during training (evaluation
  // batches may differ in number between ranks, so there it stays local).
  KtoObjective(model::Transformer& policy, const model::Transformer* reference, KtoOptions o, parallel::Comm* dp);
  double items(const data::Batch& b) const override { return static_cast<double>(b.rows); }
  at::Tensor loss(const data::Batch& b, double normalizer, bool training) override;
  void set_training(bool) override {}

 private:
  model::Transformer& policy_;
  const model::Transformer* reference_;
  KtoOptions o_;
  parallel::Comm* dp_;
};

}  // namespace medgpt::align
