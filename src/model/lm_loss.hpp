// Causal-LM loss straight from the final hidden states: the LM head and cross-entropy run over
// chunks of rows, so no more than one [chunk, V] logits block exists at a time (V is 151,936 for
// Qwen). The gradients for the hidden states and the head are formed chunk by chunk in the
// forward pass and scaled in the backward pass (the loss is linear in its upstream gradient).
#pragma once

#include <ATen/ATen.h>

namespace medgpt::model {

constexpr std::int64_t kIgnoreIndex = -100;

// sum over rows with label != -100 of -log softmax(hidden @ head^T)[label], divided by
// `normalizer` (the number of label tokens in the whole global batch, as transformers >= 4.46
// normalises under gradient accumulation; pass the local count for a plain mean).
// hidden [N, H], head [V, H], labels [N] int64 (already shifted: row i predicts labels[i]).
at::Tensor lm_loss(const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& labels, double normalizer,
                   std::int64_t chunk_rows = 1024);

// Shifts labels for next-token prediction: labels[:, t] = ids[:, t + 1], the last position -100.
at::Tensor shift_labels(const at::Tensor& labels);

}  // namespace medgpt::model
