#include "train/data_parallel.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "util/error.hpp"

namespace medgpt::train {

void check_zero_stage(int zero) {
  if (zero < 0 || zero > 3) util::fail("--train.zero", "is " + std::to_string(zero) + "; ZeRO stages are 0, 1, 2 and 3", "use 0, 1, 2 or 3");
}

std::vector<std::int64_t> shard_counts(std::int64_t b, std::int64_t e, std::int64_t padded, int dp) {
  const std::int64_t n = padded / dp;
  std::vector<std::int64_t> c(static_cast<std::size_t>(dp));
  for (int k = 0; k < dp; ++k) c[static_cast<std::size_t>(k)] = std::max<std::int64_t>(0, std::min(e, n * (k + 1)) - std::max(b, n * k));
  return c;
}

DataParallel::DataParallel(parallel::Comm* dp, parallel::Comm* tp, parallel::Comm* pp, int zero, std::int64_t bucket_bytes)
    : dp_(dp && dp->size() > 1 ? dp : nullptr), tp_(tp && tp->size() > 1 ? tp : nullptr), pp_(pp && pp->size() > 1 ? pp : nullptr), zero_(zero),
      bucket_elems_(std::max<std::int64_t>(1, bucket_bytes / 4)) {
  check_zero_stage(zero);
}

std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t padded, int dp, int rank) {
  const std::int64_t n = padded / dp;  // FlatParams pads to a multiple of dp
  return {n * rank, n * (rank + 1)};
}

std::pair<std::int64_t, std::int64_t> DataParallel::shard(const FlatParams& flat) const {
  if (zero_ == 0 || !dp_) return {0, flat.padded()};
  return shard_range(flat.padded(), dp_->size(), dp_->rank());
}

void DataParallel::reduce_grads(FlatParams& flat) {
  if (!dp_ || zero_ >= 2) return;  // ZeRO-2/3: reduced layer by layer during the backward pass (ZeroUnits)
  if (zero_ == 0) {
    for (std::int64_t b = 0; b < flat.padded(); b += bucket_elems_)
      dp_->allreduce(flat.grad.narrow(0, b, std::min(bucket_elems_, flat.padded() - b)), parallel::ReduceOp::kSum);
    return;
  }
  // ZeRO-1: bucket by bucket too (MPI's reduce-scatter would otherwise make temporaries the size
  // of the whole vector); a bucket lies across one or two ranks' shards.
  const auto [lo, hi] = shard(flat);
  for (std::int64_t b = 0; b < flat.padded(); b += bucket_elems_) {
    const std::int64_t e = std::min(flat.padded(), b + bucket_elems_);
    const std::int64_t mb = std::clamp(b, lo, hi), me = std::clamp(e, lo, hi);
    at::Tensor mine = at::empty({me - mb}, at::kFloat);
    dp_->reduce_scatter_v(flat.grad.narrow(0, b, e - b), mine, shard_counts(b, e, flat.padded(), dp_->size()), parallel::ReduceOp::kSum);
    flat.grad_range(mb, me).copy_(mine);
  }
}

double DataParallel::grad_norm(const FlatParams& flat) const {
  // Squares summed in float64, in chunks (no vector-sized temporaries), so the sharded ZeRO-1 sum
  // agrees with the whole one to ~1e-16 and the clipping matches plain dp. Tensors every tp rank
  // holds whole count on tp rank 0 only; a tied head's copy on the last pipeline stage not at all.
  const auto [lo, hi] = shard(flat);
  const bool count_replicated = !tp_ || tp_->rank() == 0;
  constexpr std::int64_t kChunk = 1 << 20;
  double sq = 0;
  for (const FlatSegment& s : flat.segments()) {
    const std::int64_t b = std::max(lo, s.offset), e = std::min(hi, s.offset + s.numel);
    if (b >= e || (s.replicated && !count_replicated) || s.copy) continue;
    for (std::int64_t c = b; c < e; c += kChunk)
      sq += flat.grad_range(c, std::min(e, c + kChunk)).to(at::kDouble).pow(2).sum().item<double>();
  }
  at::Tensor t = at::full({1}, sq, at::kDouble);
  if (tp_) tp_->allreduce(t, parallel::ReduceOp::kSum);
  if (pp_) pp_->allreduce(t, parallel::ReduceOp::kSum);
  if (dp_ && zero_ >= 1) dp_->allreduce(t, parallel::ReduceOp::kSum);
  return std::sqrt(t.item<double>());
}

void DataParallel::scale_grads(FlatParams& flat, double factor) const {
  const auto [lo, hi] = shard(flat);
  flat.grad_range(lo, hi).mul_(factor);
}

void DataParallel::gather_params(FlatParams& flat) {
  if (!dp_ || zero_ == 0 || zero_ == 3) return;  // ZeRO-3 gathers layer by layer in the next forward
  const auto [lo, hi] = shard(flat);
  dp_->allgather(flat.master.narrow(0, lo, hi - lo), flat.master);
}

}  // namespace medgpt::train
