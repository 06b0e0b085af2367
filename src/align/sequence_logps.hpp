// Per-row sums of the log-probabilities a model gives the label tokens of a batch (labels shifted
// as for the LM loss, -100 ignored) and how many there are: the sequence log-probs of the
// preference objectives. The LM head runs through the fused chunked LM loss one row at a time
// (memory stays at one chunk x vocab; vocab-parallel under tensor parallelism).
#pragma once

#include "data/loader.hpp"
#include "model/transformer.hpp"

namespace medgpt::align {

struct RowLogps {
  at::Tensor sum;    // [rows] float32, differentiable
  at::Tensor count;  // [rows] float32
  // With `all_tokens`: the same over every real token after the first (prompt included; ORPO's NLL).
  at::Tensor all_sum, all_count;
};

RowLogps row_logps(const model::Transformer& m, const data::Batch& b, bool all_tokens = false);
// The same from the final hidden states `h` [R, T, H] of a batch cut by trim_padding (the last
// pipeline stage's output), run with logps_inputs(b).
RowLogps row_logps_from_hidden(const model::Transformer& m, const at::Tensor& h, const data::Batch& b, bool all_tokens = false);
// The forward inputs row_logps runs a trimmed batch with.
model::ForwardInputs logps_inputs(const data::Batch& b);

// The reference model's row log-probs, without gradients: a frozen copy (`reference`), or, when
// that is null (LoRA), the policy with its adapters disabled.
RowLogps reference_row_logps(model::Transformer& policy, const model::Transformer* reference, const data::Batch& b);

// Summed completion log-probs [B] of each pair's chosen and rejected rows, and the completion
// token counts [B] (per-token averages divide by them).
struct PairLogps {
  at::Tensor chosen, rejected;
  at::Tensor chosen_tokens, rejected_tokens;
  at::Tensor chosen_mean() const { return chosen / chosen_tokens.to(chosen.scalar_type()).clamp_min(1); }
  at::Tensor rejected_mean() const { return rejected / rejected_tokens.to(rejected.scalar_type()).clamp_min(1); }
};

// The pairs of a pair batch's rows [chosen rows..., rejected rows...] (data::LoaderOptions::group).
PairLogps pair_logps(const RowLogps& rows);

// The batch cut to its longest row: preference rows are padded to the corpus' max_length, and
// the columns that are padding in every row only cost time.
data::Batch trim_padding(const data::Batch& b);

// The forward inputs of a padded batch (positions, and segment ids that keep padding apart).
model::ForwardInputs padded_inputs(const data::Batch& b);

}  // namespace medgpt::align
