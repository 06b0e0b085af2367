// Causal-LM loss straight from the final hidden states: the LM head and cross-entropy run over
// chunks of rows, so no more than one [chunk, V] logits block exists at a time (V is 151,936 for
// Qwen). The gradients for the hidden states and the head are formed chunk by chunk in the
// forward pass and scaled in the backward pass (the loss is linear in its upstream gradient).
#pragma once

#include <ATen/ATen.h>

#include "parallel/comm.hpp"

namespace medgpt::model {

constexpr std::int64_t kIgnoreIndex = -100;

// sum over rows with label != -100 of -log softmax(hidden @ head^T)[label], divided by
// `normalizer` (the number of label tokens in the whole global batch, as transformers >= 4.46
// normalises under gradient accumulation; pass the local count for a plain mean).
// hidden [N, H], head [V, H], labels [N] int64 (already shifted: row i predicts labels[i]).
// Vocab-parallel with a tp communicator: `head` holds rows [vocab_start, vocab_start + V/tp);
// the softmax statistics are combined over tp and the gradient for `hidden` is this rank's
// partial sum (pass hidden through parallel::copy_to_tp so autograd all-reduces it).
at::Tensor lm_loss(const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& labels, double normalizer,
                   std::int64_t chunk_rows = 1024, parallel::Comm* tp = nullptr, std::int64_t vocab_start = 0);

// Shifts labels for next-token prediction: labels[:, t] = ids[:, t + 1], the last position -100.
at::Tensor shift_labels(const at::Tensor& labels);

}  // namespace medgpt::model
