// Per-row sums of the log-probabilities a model gives the label tokens of a batch (labels shifted
// as for the LM loss, -100 ignored) and how many there are: the sequence log-probs of the
// preference objectives. The LM head runs one row at a time, so memory stays at T x vocab.
#pragma once

#include "data/loader.hpp"
#include "model/transformer.hpp"

namespace medgpt::align {

struct RowLogps {
  at::Tensor sum;    // [rows] float32, differentiable
  at::Tensor count;  // [rows] float32
};

RowLogps row_logps(const model::Transformer& m, const data::Batch& b);

// The forward inputs of a padded batch (positions, and segment ids that keep padding apart).
model::ForwardInputs padded_inputs(const data::Batch& b);

}  // namespace medgpt::align
