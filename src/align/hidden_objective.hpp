// The preference objectives' common shape: the loss is a function of the policy's final hidden
// states over the batch cut to its longest row (padding columns only cost time). Run whole
// (loss), or split over pipeline stages (stage_forward): every stage cuts the batch alike, the
// first embeds it, the last computes the loss from the hidden states it ends with.
#pragma once

#include "model/transformer.hpp"
#include "train/objective.hpp"

namespace medgpt::align {

class HiddenStateObjective : public train::Objective {
 public:
  at::Tensor loss(const data::Batch& b, double normalizer, bool training) override;
  at::Tensor stage_forward(const data::Batch& b, const at::Tensor& input, double normalizer, bool training) override;
  at::Tensor activation_like(const data::Batch& b) const override;
  void set_training(bool) override {}  // dropout stays off (TRL's disable_dropout)

 protected:
  // sparse_embedding_grad: the LM head runs through lm_loss, which gives a tied embedding its own
  // gradient (the sequence log-prob objectives); false for a score head.
  HiddenStateObjective(model::Transformer& model, bool sparse_embedding_grad);
  // The loss from the final hidden states h [R, T, H] of `trimmed` (trim_padding of the batch).
  virtual at::Tensor loss_from_hidden(const data::Batch& trimmed, const at::Tensor& h, double normalizer) = 0;
  model::Transformer& model_;

 private:
  model::ForwardInputs inputs(const data::Batch& trimmed) const;
  bool sparse_embedding_grad_;
};

}  // namespace medgpt::align
