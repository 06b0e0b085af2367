#include "train/flat_params.hpp"

#include "train/adamw.hpp"
#include "util/error.hpp"

namespace medgpt::train {

FlatParams::FlatParams(model::NamedTensors params, const std::vector<int>& split_dims, std::int64_t pad_multiple, bool decay_all,
                       bool full_grads)
    : params_(std::move(params)) {
  if (split_dims.size() != params_.size()) util::fail("FlatParams", "split_dims does not match the parameters", "internal error");
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    segments_.push_back({name, numel_, p.numel(), decay_all || decays(name), split_dims[i] < 0});
    numel_ += p.numel();
  }
  const std::int64_t m = std::max<std::int64_t>(1, pad_multiple);
  const std::int64_t padded = (numel_ + m - 1) / m * m;
  padded_ = padded;
  master = at::zeros({padded}, at::kFloat);
  grad = at::zeros({full_grads ? padded : 0}, at::kFloat);
  grads_sharded_ = !full_grads;  // until shard() gives this rank its range
  fresh_.assign(params_.size(), false);
  at::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i].second;
    const FlatSegment& s = segments_[i];
    master.narrow(0, s.offset, s.numel).copy_(p.reshape({-1}));
    at::Tensor g = full_grads ? grad.narrow(0, s.offset, s.numel) : at::Tensor();
    if (g.defined() && p.grad().defined()) g.copy_(p.grad().reshape({-1}));
    if (p.scalar_type() == at::kFloat && !p.is_meta()) {
      // Re-point the parameter itself (every holder of it sees the new storage).
      p.set_data(master.narrow(0, s.offset, s.numel).view(p.sizes()));
      p.mutable_grad() = g.defined() ? g.view(p.sizes()) : at::Tensor();
    } else {
      p.mutable_grad() = at::Tensor();
    }
  }
}

void FlatParams::shard(std::int64_t lo, std::int64_t hi, bool master_too) {
  if (lo < 0 || lo > hi || hi > padded_) util::fail("FlatParams::shard", "range outside the vector", "internal error");
  at::NoGradGuard no_grad;
  for (auto& [name, p] : params_) p.mutable_grad() = at::Tensor();
  grad = at::zeros({hi - lo}, at::kFloat);
  grad_lo_ = lo;
  grads_sharded_ = true;
  if (master_too) {
    // The parameters must no longer view the whole master (ZeroUnits re-points them first).
    for (std::size_t i = 0; i < params_.size(); ++i)
      if (is_view(i)) util::fail("FlatParams::shard", params_[i].first + " still views the master vector", "internal error");
    master = master.narrow(0, lo, hi - lo).clone();
    master_lo_ = lo;
    master_sharded_ = true;
  }
}

at::Tensor FlatParams::master_range(std::int64_t b, std::int64_t e) const {
  if (b < master_lo_ || b > e || e > master_lo_ + master.numel())
    util::fail("FlatParams", "master elements [" + std::to_string(b) + ", " + std::to_string(e) + ") are not this rank's", "internal error");
  return master.narrow(0, b - master_lo_, e - b);
}

at::Tensor FlatParams::grad_range(std::int64_t b, std::int64_t e) const {
  if (b < grad_lo_ || b > e || e > grad_lo_ + grad.numel())
    util::fail("FlatParams", "gradient elements [" + std::to_string(b) + ", " + std::to_string(e) + ") are not this rank's", "internal error");
  return grad.narrow(0, b - grad_lo_, e - b);
}

bool FlatParams::is_view(std::size_t i) const {
  const at::Tensor& p = params_[i].second;
  return p.scalar_type() == at::kFloat && p.storage().is_alias_of(master.storage());
}

void FlatParams::collect_grads() {
  if (grads_sharded()) util::fail("FlatParams::collect_grads", "the gradients are sharded (ZeRO-2/3)", "internal error: ZeroUnits reduces them");
  at::NoGradGuard no_grad;
  constexpr std::int64_t kChunk = 1 << 20;  // the widened temporary stays in cache
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (is_view(i)) continue;
    at::Tensor& p = params_[i].second;
    at::Tensor g = grad.narrow(0, segments_[i].offset, segments_[i].numel);
    if (!p.grad().defined()) {
      if (fresh_[i]) g.zero_();
    } else if (fresh_[i]) {  // the first gradient of the step: widened straight into place
      g.copy_(p.grad().reshape({-1}));
    } else {
      const at::Tensor pg = p.grad().reshape({-1});
      for (std::int64_t c = 0; c < g.numel(); c += kChunk) {
        const std::int64_t n = std::min(kChunk, g.numel() - c);
        g.narrow(0, c, n).add_(pg.narrow(0, c, n));
      }
    }
    fresh_[i] = false;
    p.mutable_grad() = at::Tensor();
  }
}

void FlatParams::zero_grads() {
  if (grads_sharded()) {  // autograd's gradients were reduced into the shard and dropped
    grad.zero_();
    for (auto& [name, p] : params_) p.mutable_grad() = at::Tensor();
    return;
  }
  // Views accumulate in place and start from zero; the others are written by their first
  // collect_grads of the step (no pass over the whole vector).
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (is_view(i)) {
      grad.narrow(0, segments_[i].offset, segments_[i].numel).zero_();
    } else {
      params_[i].second.mutable_grad() = at::Tensor();
      fresh_[i] = true;
    }
  }
}

void FlatParams::publish() {
  if (master_sharded()) return;  // ZeRO-3: each forward gathers the parameters from the shards
  at::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (is_view(i)) continue;
    at::Tensor& p = params_[i].second;
    p.copy_(master.narrow(0, segments_[i].offset, segments_[i].numel).view(p.sizes()));
  }
}

void FlatParams::mark_copy(const std::string& name) {
  for (FlatSegment& s : segments_)
    if (s.name == name) s.copy = true;
}

}  // namespace medgpt::train
