// Data parallelism over the dp communicator, on the flat parameter and gradient vectors.
// zero 0: the gradient vector is all-reduced (sum) in buckets and every rank runs the optimizer on
// all of it. zero 1 (ZeRO-1): the gradient vector is reduce-scattered, each rank updates only its
// 1/dp slice (and keeps only that slice's optimizer state), and the updated master vector is
// all-gathered. zero 2 and 3: the same, with the gradients reduce-scattered layer by layer during the
// backward pass, and (zero 3) the parameters sharded too (train/zero_units.hpp). Gradients are sums: each micro-batch loss is already divided by the label tokens
// of the whole global batch, over every rank.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "parallel/comm.hpp"
#include "train/flat_params.hpp"

namespace medgpt::train {

// util::Error naming --train.zero unless it is 0 to 3.
void check_zero_stage(int zero);

// How many elements of [b, e) of a flat vector padded to `padded` each of `dp` ranks keeps, its
// ZeRO shard being [k n, (k+1) n), n = padded / dp: the counts of an uneven collective over a bucket.
std::vector<std::int64_t> shard_counts(std::int64_t b, std::int64_t e, std::int64_t padded, int dp);
// The ZeRO shard [k n, (k+1) n) of rank k of `dp` in a flat vector padded to a multiple of dp.
std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t padded, int dp, int rank);

class DataParallel {
 public:
  // dp may be null (one rank); tp and pp (may be null) complete the gradient norm. bucket_bytes:
  // size of each all-reduce (zero 0).
  DataParallel(parallel::Comm* dp, parallel::Comm* tp, parallel::Comm* pp, int zero, std::int64_t bucket_bytes = 25 << 20);

  int size() const { return dp_ ? dp_->size() : 1; }
  int rank() const { return dp_ ? dp_->rank() : 0; }
  int zero() const { return zero_; }
  // The flat range this rank's optimizer updates.
  std::pair<std::int64_t, std::int64_t> shard(const FlatParams& flat) const;

  // After the last micro-batch: gradients summed over dp ranks (in this rank's shard, for zero 1;
  // zero 2 and 3 did it during the backward passes).
  void reduce_grads(FlatParams& flat);
  // L2 norm of the whole model's gradient (every element once, over tp, pp and dp shards).
  double grad_norm(const FlatParams& flat) const;
  // Scales this rank's shard of the gradient (clipping).
  void scale_grads(FlatParams& flat, double factor) const;
  // After the optimizer step (zero 1 and 2): every rank gets the whole updated master vector.
  void gather_params(FlatParams& flat);

 private:
  parallel::Comm* dp_;
  parallel::Comm* tp_;
  parallel::Comm* pp_;
  int zero_;
  std::int64_t bucket_elems_;
};

}  // namespace medgpt::train
