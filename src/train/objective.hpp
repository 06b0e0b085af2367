// What the trainer optimises, without knowing which loss it is (DESIGN §3: the trainer never
// knows which loss it runs). A stage objective (src/align/) turns one micro-batch into its loss
// already divided by the normaliser of the whole global batch, so that summing the micro-batch
// gradients over accumulation steps and data-parallel ranks gives the gradient of the global loss.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "data/loader.hpp"

namespace medgpt::train {

// One value of an objective's metric for one batch; the trainer reports sum(value * weight) /
// sum(weight) over the batches of a logging window and the data-parallel ranks (weight 1: a mean
// of batch values; KTO weights its per-class means by the rows of each class).
struct Metric {
  std::string name;
  double value = 0, weight = 1;
};

class Objective {
 public:
  virtual ~Objective() = default;
  // The items a batch's loss is a sum over (label tokens for the LM loss).
  virtual double items(const data::Batch& b) const = 0;
  // sum of the batch's item losses / normalizer. `training` enables training-only noise (NEFTune).
  virtual at::Tensor loss(const data::Batch& b, double normalizer, bool training) = 0;

  // Pipeline parallelism (parallel/pipeline.hpp) splits loss() at the stage boundaries, for the
  // stages whose table row says so (align/stage.hpp: a live reference model does not split).
  // This stage's part of loss(): `input` is the previous stage's output (undefined on the first
  // stage). Returns the activation to send on [rows, seq_len, hidden], or on the last stage the loss.
  virtual at::Tensor stage_forward(const data::Batch& b, const at::Tensor& input, double normalizer, bool training);
  // An empty tensor shaped like the activation a stage receives for batch b.
  virtual at::Tensor activation_like(const data::Batch& b) const;
  // Whether exp(loss) means something (a token-level LM loss): then eval_ppl is logged.
  virtual bool perplexity() const { return false; }
  // Training or evaluation mode of the model (LoRA dropout on or off).
  virtual void set_training(bool on) = 0;
  // The objective's own metrics of the batches since the last call, each name once per batch, the
  // same names in the same order on every rank ("rewards/chosen", ...).
  std::vector<Metric> take_metrics() {
    std::vector<Metric> out;
    out.swap(pending_);
    return out;
  }

 protected:
  void record(std::string name, double value, double weight = 1) { pending_.push_back({std::move(name), value, weight}); }
  void record(const std::vector<Metric>& metrics) { pending_.insert(pending_.end(), metrics.begin(), metrics.end()); }

 private:
  std::vector<Metric> pending_;
};

}  // namespace medgpt::train
