// Keys and values of every layer for a batch of sequences being generated: preallocated and grown
// by chunks, so a decode step writes one position instead of re-running the whole prefix. Rows
// share one length (prompts of different lengths are left-padded, the padding masked out).
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace medgpt::model {

struct KvCache {
  std::vector<at::Tensor> k, v;  // per layer [B, kv_heads, capacity, head_dim] (after rotary)
  std::int64_t length = 0;       // positions filled
  std::int64_t chunk = 256;      // growth step

  // Views of layer `layer` holding positions [0, length + T) after writing the new keys/values
  // [B, kv_heads, T, head_dim] at [length, length + T). `length` itself advances in
  // Transformer::hidden once every layer has written.
  std::pair<at::Tensor, at::Tensor> append(std::size_t layer, const at::Tensor& k_new, const at::Tensor& v_new);
  void clear() { k.clear(), v.clear(), length = 0; }
};

}  // namespace medgpt::model
