// The trainable parameters as one flat fp32 vector (Megatron's contiguous buffers): the optimizer,
// the data-parallel all-reduce and ZeRO-1's shards all work on ranges of it.
// fp32 parameters become views of the master vector and their gradients views of the gradient
// vector, so backward accumulates in place and nothing is copied. Parameters of another dtype
// (bf16: the compute copy, made after this by model::Transformer::set_compute_dtype from the fp32
// values kept here) have their own storage: their gradients are added into the fp32 gradient
// vector after each micro-batch (collect_grads) and the updated master is rounded back into them
// (publish).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "model/safetensors.hpp"

namespace medgpt::train {

struct FlatSegment {
  std::string name;
  std::int64_t offset = 0, numel = 0;
  bool decay = true;       // gets weight decay (train::decays)
  bool replicated = true;  // every tp rank holds the same values (counted once in the grad norm)
  bool copy = false;       // another pipeline stage holds it too (a tied head): not in the norm
};

class FlatParams {
 public:
  // `params` (all requiring grad) in a fixed order; `split_dims[i]` is -1 for a tensor every tp
  // rank holds whole. The vector is zero-padded to a multiple of `pad_multiple` (the dp size, so
  // ZeRO-1 shards are equal). Gradients already present are carried over.
  // full_grads false (ZeRO-2/3): no whole gradient vector, shard() makes this rank's.
  FlatParams(model::NamedTensors params, const std::vector<int>& split_dims, std::int64_t pad_multiple, bool decay_all = false,
             bool full_grads = true);

  at::Tensor master;  // fp32 elements [master_lo(), master_lo() + master.numel()): all, or ZeRO-3's shard
  at::Tensor grad;    // fp32 elements [grad_lo(), ...): all, or ZeRO-2/3's shard

  // ZeRO-2 (master_too false) and ZeRO-3: keep only elements [lo, hi) of the gradient vector (and
  // of the master). The parameters' gradients then come from autograd and are reduced into the
  // shard by train::ZeroUnits; under ZeRO-3 the parameters themselves are ZeroUnits' to place.
  void shard(std::int64_t lo, std::int64_t hi, bool master_too);
  std::int64_t master_lo() const { return master_lo_; }
  std::int64_t grad_lo() const { return grad_lo_; }
  bool master_sharded() const { return master_sharded_; }
  bool grads_sharded() const { return grads_sharded_; }
  // Elements [b, e) of the master / gradient vector (util::Error outside what this rank keeps).
  at::Tensor master_range(std::int64_t b, std::int64_t e) const;
  at::Tensor grad_range(std::int64_t b, std::int64_t e) const;

  const std::vector<FlatSegment>& segments() const { return segments_; }
  const model::NamedTensors& params() const { return params_; }
  std::int64_t numel() const { return numel_; }
  std::int64_t padded() const { return padded_; }

  // After a micro-batch's backward: adds the gradients of non-view parameters into `grad`.
  void collect_grads();
  // Before a step's first micro-batch. Segments of non-view parameters are stale until the first
  // collect_grads after it: call that after every backward, as the trainer does.
  void zero_grads();
  // After the optimizer step: master -> the non-view (lower precision) parameters.
  void publish();
  // Marks a parameter as another stage's copy (FlatSegment::copy); unknown names are ignored.
  void mark_copy(const std::string& name);

 private:
  bool is_view(std::size_t i) const;  // parameter i lives in `master`

  model::NamedTensors params_;
  std::vector<FlatSegment> segments_;
  std::vector<bool> fresh_;  // non-view parameter i has had no collect_grads since zero_grads
  std::int64_t numel_ = 0, padded_ = 0, master_lo_ = 0, grad_lo_ = 0;
  bool master_sharded_ = false, grads_sharded_ = false;
};

}  // namespace medgpt::train
