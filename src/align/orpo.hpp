// ORPO (TRL's ORPOTrainer, specs/algorithms.md §6): no reference model; the chosen rows' NLL
// (every real token, prompt included) plus beta times the odds-ratio term on the per-token
// average completion log-probs a_c, a_r:
//   log_odds = (a_c - a_r) - (log(1 - e^a_c) - log(1 - e^a_r))
//   loss     = nll - beta * mean(log sigmoid(log_odds))
#pragma once

#include <ATen/ATen.h>

#include "align/hidden_objective.hpp"
#include "model/transformer.hpp"
#include "train/objective.hpp"
#include "util/options_fwd.hpp"

namespace medgpt::align {

struct OrpoOptions {
  double beta = 0.1;  // the paper's lambda
};

// --orpo.beta, read and checked (positive).
void add_orpo_options(po::options_description& d);
OrpoOptions orpo_options(const po::variables_map& vm);

// log(1 - e^x) for x < 0, stable on both sides of -ln 2.
at::Tensor log1mexp(const at::Tensor& x);
// log_odds [B] of the chosen over the rejected answer.
at::Tensor orpo_log_odds(const at::Tensor& chosen_mean_logp, const at::Tensor& rejected_mean_logp);

class OrpoObjective : public HiddenStateObjective {
 public:
  OrpoObjective(model::Transformer& model, OrpoOptions o);
  double items(const data::Batch& b) const override { return static_cast<double>(b.rows / 2); }

 private:
  at::Tensor loss_from_hidden(const data::Batch& b, const at::Tensor& h, double normalizer) override;
  OrpoOptions o_;
};

}  // namespace medgpt::align
