// CPO and SimPO (TRL's CPOTrainer, specs/algorithms.md §7): no reference model; a pairwise loss on
// the completion log-probs (sums for sigmoid/hinge, per-token averages for ipo/simpo), z = lp_c - lp_r:
//   sigmoid: -(1-ls) log s(beta z) - ls log s(-beta z)     hinge: relu(1 - beta z)
//   ipo:     (z - 1/(2 beta))^2                             simpo: sigmoid on z - gamma / beta
// plus cpo_alpha times the chosen completions' token-mean NLL.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "align/sequence_logps.hpp"
#include "align/hidden_objective.hpp"
#include "model/transformer.hpp"
#include "train/objective.hpp"
#include "util/options_fwd.hpp"

namespace medgpt::align {

struct CpoOptions {
  std::string loss_type = "simpo";  // sigmoid | hinge | ipo | simpo
  double beta = 2.0;                // SimPO's; TRL's CPO default is 0.1
  double simpo_gamma = 0.5;         // target reward margin (absolute, TRL's convention)
  double cpo_alpha = 0.0;           // 0: pure SimPO; 1: CPO / CPO-SimPO
  double label_smoothing = 0.0;
};

void check_cpo_options(const CpoOptions& o, const std::string& where);
// --simpo.* (loss_type, beta, gamma, cpo_alpha, label_smoothing), read and checked.
void add_simpo_options(po::options_description& d);
CpoOptions simpo_options(const po::variables_map& vm);

// The per-token average (ipo, simpo) or the sum (sigmoid, hinge) of each answer's log-probs.
std::pair<at::Tensor, at::Tensor> cpo_logps(const PairLogps& pi, const CpoOptions& o);
// The per-pair preference loss [B] (without the NLL term).
at::Tensor cpo_losses(const at::Tensor& chosen_logp, const at::Tensor& rejected_logp, const CpoOptions& o);

class CpoObjective : public HiddenStateObjective {
 public:
  CpoObjective(model::Transformer& model, CpoOptions o);
  double items(const data::Batch& b) const override { return static_cast<double>(b.rows / 2); }

 private:
  at::Tensor loss_from_hidden(const data::Batch& b, const at::Tensor& h, double normalizer) override;
  CpoOptions o_;
};

}  // namespace medgpt::align
