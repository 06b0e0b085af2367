// transformers' logits processors, in generate()'s order (specs/hf-compat.md §6): repetition
// penalty on the raw logits, then, only when sampling, temperature -> top-k -> top-p -> min-p, then
// a draw from the softmax; greedy takes the argmax after the repetition penalty.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "infer/generation_options.hpp"

namespace medgpt::infer {

// logits [B, V] float32, in place: s = seen ? (s < 0 ? s * p : s / p) : s for every id in the
// row's prompt and output so far.
void apply_repetition_penalty(at::Tensor& logits, const std::vector<std::vector<std::int64_t>>& seen, double penalty);
// Temperature, top-k (ties at the threshold kept), top-p (smallest top set with mass >= p, at least
// one token), min-p; removed entries become -inf.
at::Tensor warp(at::Tensor logits, const SamplingOptions& o);
// The next id of every row [B]: argmax, or a draw from softmax(warp(...)) with `gen`.
at::Tensor next_tokens(at::Tensor logits, const std::vector<std::vector<std::int64_t>>& seen, const SamplingOptions& o, at::Generator& gen);

}  // namespace medgpt::infer
