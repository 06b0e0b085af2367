// Pretraining and SFT objective: next-token cross-entropy summed over the label tokens (-100
// elsewhere: prompts, padding, each packed sample's first token) and divided by the label tokens
// of the whole global batch (transformers >= 4.46, specs/algorithms.md §1).
#pragma once

#include "model/transformer.hpp"
#include "train/objective.hpp"

namespace medgpt::align {

class LmObjective : public train::Objective {
 public:
  // packed: rows may hold several samples (attention kept inside each, positions restarting).
  LmObjective(model::Transformer& model, bool packed, double neftune_alpha = 0)
      : model_(model), packed_(packed), neftune_alpha_(neftune_alpha) {}
  double items(const data::Batch& b) const override { return static_cast<double>(b.label_tokens); }
  at::Tensor loss(const data::Batch& b, double normalizer, bool training) override;
  at::Tensor stage_forward(const data::Batch& b, const at::Tensor& input, double normalizer, bool training) override;
  at::Tensor activation_like(const data::Batch& b) const override;
  void set_training(bool on) override;
  bool perplexity() const override { return true; }

 private:
  model::ForwardInputs inputs(const data::Batch& b, bool training) const;

  model::Transformer& model_;
  bool packed_;
  double neftune_alpha_;
};

// A batch's [rows, seq_len] arrays as int64 tensors.
at::Tensor batch_tensor(const std::vector<std::int64_t>& v, const data::Batch& b);

}  // namespace medgpt::align
