// Rotary position embedding tables, computed in float32 as transformers does (default, linear and
// llama3 frequency scaling), and their application with rotate_half (non-interleaved halves).
#pragma once

#include <ATen/ATen.h>

#include "model/config.hpp"

namespace medgpt::model {

// inv_freq [head_dim / 2], float32. `seq_len` matters only for "dynamic" scaling (NTK-aware,
// inference): beyond max_position_embeddings the base grows with the sequence, as transformers does.
at::Tensor rope_inv_freq(const ModelConfig& c, std::int64_t seq_len = 0);

// cos, sin [B, T, head_dim] in `dtype` for integer positions [B, T].
std::pair<at::Tensor, at::Tensor> rope_tables(const at::Tensor& inv_freq, const at::Tensor& positions, at::ScalarType dtype);

// x [B, heads, T, D]: x * cos + rotate_half(x) * sin, with cos/sin [B, T, D].
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace medgpt::model
