// Tensor-parallel building blocks as autograd functions in conjugate pairs (Megatron-LM's
// tensor_parallel/mappings.py): entering a parallel region is identity forward / all-reduce
// backward; leaving it is all-reduce forward / identity backward. A column-parallel linear is
// copy_to_tp then a local linear; the row-parallel linear after it ends with reduce_from_tp.
#pragma once

#include <ATen/ATen.h>

#include "parallel/comm.hpp"

namespace medgpt::parallel {

// Identity forward; gradients all-reduced over tp (the input is used by every tp rank).
at::Tensor copy_to_tp(const at::Tensor& x, Comm& tp);
// Sum over tp forward (partial results of a row-parallel layer); identity backward.
at::Tensor reduce_from_tp(const at::Tensor& x, Comm& tp);
// Concatenates every rank's slice along the last dimension (e.g. vocab-parallel logits);
// backward keeps this rank's slice of the gradient.
at::Tensor gather_from_tp(const at::Tensor& x, Comm& tp);

// Vocab-parallel embedding: this rank holds rows [vocab_start, vocab_start + rows) of the table;
// ids outside it contribute zeros and the partial lookups are summed over tp.
at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& weight_shard, std::int64_t vocab_start, Comm& tp);

}  // namespace medgpt::parallel
