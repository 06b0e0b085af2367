// Attention that never holds the [T, keys] score matrix: FlashAttention's algorithm (Dao et al.,
// 2022) on LibTorch tensors. Query blocks meet key blocks with an online softmax (running max and
// sum per row); the backward pass recomputes each block's probabilities from the saved
// log-sum-exp. Memory per layer: O(B x heads x T x head_dim) plus one [Bq, Bk] block per head,
// instead of the eager path's O(B x heads x T x keys) scores and probabilities (kept for backward).
//
// The mask is the eager path's (Transformer::stage_forward): query t sees keys up to past + t,
// keys with key_mask 1, and keys of its own packed sample (segment ids). Eager fills masked scores
// with the dtype's lowest value, as transformers does, so a row that sees no key at all (a padding
// row) averages every value uniformly; this path does the same, so outputs and gradients agree
// everywhere, padding rows included. Scores, softmax and accumulation run in fp32.
#pragma once

#include <ATen/ATen.h>

namespace medgpt::model {

struct AttentionMask {
  std::int64_t past = 0;   // keys before the first query (a KV cache)
  at::Tensor key_mask;     // [B, keys], 1 = a real key; undefined: every key
  at::Tensor segment_ids;  // [B, T] packed samples (no cache: keys == T); undefined: one sample
};

// softmax(q k^T * scale + mask) v for q [B, H, T, D], k and v [B, H, keys, D] (GQA expanded),
// differentiable in q, k and v. `block`: queries and keys per block.
at::Tensor chunked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask, double scale,
                             std::int64_t block = 128);

}  // namespace medgpt::model
