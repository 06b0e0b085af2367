#include "train/zero_units.hpp"

#include <c10/core/StorageImpl.h>

#include <algorithm>
#include <string>
#include <tuple>

#include "train/data_parallel.hpp"
#include "util/error.hpp"

namespace medgpt::train {

namespace {

// A run's buffer outside its gather window: no memory, the same storage object (every view of it,
// autograd's saved tensors included, sees the memory again once it is refilled).
void free_storage(const at::Tensor& t) {
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  s->set_data_ptr_noswap(at::DataPtr(nullptr, t.device()));
  s->set_nbytes(0);
}

void alloc_storage(const at::Tensor& t) {
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  const std::size_t bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
  s->set_data_ptr_noswap(s->allocator()->allocate(bytes));
  s->set_nbytes(bytes);
}

}  // namespace

void check_zero_layout(int zero, int pp, bool qlora, bool whole_reference) {
  const std::string z = std::to_string(zero);
  if (zero >= 2 && pp > 1)
    util::fail("--train.zero", z + " with --parallel.pp " + std::to_string(pp) + ": pipeline stages shard the optimizer state only (ZeRO-1)",
               "use --train.zero 1 with pipeline parallelism, or --parallel.pp 1 with ZeRO-" + z);
  if (zero == 3 && qlora)
    util::fail("--train.zero", "3 shards every parameter, and QLoRA's NF4 base weights cannot be sharded", "use --train.zero 2 with QLoRA");
  if (zero == 3 && whole_reference)
    util::fail("--train.zero", "3 keeps no whole model on any rank, and this stage's reference model is a whole copy",
               "add --dpo.precompute_ref_log_probs (the reference's log-probs computed once before training), or use --train.zero 2");
}

ZeroUnits::ZeroUnits(model::Transformer& m, FlatParams& flat, parallel::Comm* dp, int zero, std::int64_t bucket_bytes)
    : m_(m), flat_(flat), dp_(dp && dp->size() > 1 ? dp : nullptr), zero_(zero), bucket_(std::max<std::int64_t>(1024, bucket_bytes / 4)) {
  std::tie(lo_, hi_) = dp_ ? shard_range(flat.padded(), dp_->size(), dp_->rank()) : std::make_pair(std::int64_t{0}, flat.padded());
  if (zero_ != 2 && zero_ != 3) util::fail("ZeroUnits", "is for ZeRO stages 2 and 3", "internal error");
  const int units = m.head_unit() + 1;
  unit_runs_.assign(static_cast<std::size_t>(units), {});
  backward_refs_.assign(static_cast<std::size_t>(units), 0);
  first_unit_ = m.stage().embedding ? 0 : 1;
  auto unit_of = [&](const std::string& name) {
    const int u = m.unit_of(name);
    if (u < 0) util::fail("ZeroUnits", name + " belongs to no unit of this stage", "internal error");
    return u;
  };
  // Runs: maximal spans of consecutive tensors of one unit.
  auto add = [&](bool trainable, std::size_t i, const std::string& name, std::int64_t offset, std::int64_t numel) {
    const int u = unit_of(name);
    if (runs_.empty() || runs_.back().trainable != trainable || runs_.back().units.front() != u || runs_.back().end != offset) {
      runs_.push_back({});
      runs_.back().trainable = trainable;
      runs_.back().begin = offset;
      runs_.back().end = offset;
      runs_.back().units = {u};
    }
    Run& r = runs_.back();
    r.members.push_back(i);
    r.offsets.push_back(offset);
    r.end = offset + numel;
  };
  for (std::size_t i = 0; i < flat.segments().size(); ++i) add(true, i, flat.segments()[i].name, flat.segments()[i].offset, flat.segments()[i].numel);

  if (zero_ == 3) {
    at::NoGradGuard no_grad;
    // The frozen parameters (LoRA's base) in their own sharded vector.
    std::int64_t total = 0;
    std::vector<std::int64_t> frozen_offsets;
    for (const auto& [name, p] : m.named_parameters()) {
      if (p.requires_grad()) continue;
      if (!p.defined())
        util::fail("--train.zero", "3 shards every parameter, and QLoRA's NF4 base weights cannot be sharded", "use --train.zero 2 with QLoRA");
      frozen_.emplace_back(name, p);
      frozen_offsets.push_back(total);
      total += p.numel();
    }
    const std::int64_t dps = dp_ ? dp_->size() : 1, dpr = dp_ ? dp_->rank() : 0;
    frozen_padded_ = (total + dps - 1) / dps * dps;
    const std::int64_t n = frozen_padded_ / dps;
    frozen_lo_ = n * dpr;
    frozen_shard_ = at::zeros({n}, at::TensorOptions().dtype(frozen_.empty() ? at::kFloat : frozen_.front().second.scalar_type()));
    for (std::size_t i = 0; i < frozen_.size(); ++i) {
      const at::Tensor& p = frozen_[i].second;
      const std::int64_t b = std::max(frozen_lo_, frozen_offsets[i]), e = std::min(frozen_lo_ + n, frozen_offsets[i] + p.numel());
      if (b < e) frozen_shard_.narrow(0, b - frozen_lo_, e - b).copy_(p.reshape({-1}).narrow(0, b - frozen_offsets[i], e - b));
      add(false, i, frozen_[i].first, frozen_offsets[i], p.numel());
    }
    // Each run's buffer; the parameters become views of it, and it is released until gathered.
    for (Run& r : runs_) {
      const at::ScalarType dtype = param(r, 0).scalar_type();
      r.full = at::empty({r.end - r.begin}, at::TensorOptions().dtype(dtype));
      for (std::size_t k = 0; k < r.members.size(); ++k) {
        const at::Tensor& p = param(r, k);
        if (p.scalar_type() != dtype) util::fail("ZeroUnits", "a unit mixes dtypes", "internal error");
        const_cast<at::Tensor&>(p).set_data(r.full.narrow(0, r.offsets[k] - r.begin, p.numel()).view(p.sizes()));
      }
      free_storage(r.full);
    }
  }
  // A tied head is the embedding: the head unit uses its runs too.
  if (m.tied_head() && m.stage().embedding && m.stage().head)
    for (Run& r : runs_)
      if (r.units.front() == 0) r.units.push_back(m.head_unit());
  for (std::size_t k = 0; k < runs_.size(); ++k)
    for (const int u : runs_[k].units) unit_runs_[static_cast<std::size_t>(u)].push_back(k);
  flat.shard(lo_, hi_, zero_ == 3);
  m.set_unit_hooks(this);
}

ZeroUnits::~ZeroUnits() { m_.set_unit_hooks(nullptr); }

const at::Tensor& ZeroUnits::param(const Run& r, std::size_t i) const {
  return r.trainable ? flat_.params()[r.members[i]].second : frozen_[r.members[i]].second;
}

void ZeroUnits::start_gather(Run& r) {
  if (r.gathered) return;
  at::NoGradGuard no_grad;
  alloc_storage(r.full);
  const std::int64_t padded = r.trainable ? flat_.padded() : frozen_padded_;
  const std::int64_t mine_lo = r.trainable ? lo_ : frozen_lo_, mine_hi = r.trainable ? hi_ : frozen_lo_ + frozen_shard_.numel();
  for (std::int64_t b = r.begin; b < r.end; b += bucket_) {
    const std::int64_t e = std::min(r.end, b + bucket_);
    const std::int64_t mb = std::clamp(b, mine_lo, mine_hi), me = std::clamp(e, mine_lo, mine_hi);
    const at::Tensor mine = r.trainable ? flat_.master_range(mb, me).to(r.full.scalar_type())
                                        : frozen_shard_.narrow(0, mb - frozen_lo_, me - mb);
    at::Tensor out = r.full.narrow(0, b - r.begin, e - b);
    if (dp_) r.inflight.push_back(dp_->start_allgather_v(mine.contiguous(), out, shard_counts(b, e, padded, dp_->size())));
    else out.copy_(mine);
  }
  r.gathered = true;
}

void ZeroUnits::gather(Run& r) {
  start_gather(r);
  for (auto& req : r.inflight) req->wait();
  r.inflight.clear();
}

void ZeroUnits::prefetch(int unit) {
  if (unit < 1 || unit >= static_cast<int>(unit_runs_.size())) return;
  for (const std::size_t k : unit_runs_[static_cast<std::size_t>(unit)]) start_gather(runs_[k]);
}

void ZeroUnits::release(Run& r) {
  if (!r.gathered) return;
  for (auto& req : r.inflight) req->wait();  // MPI must be done writing before the memory goes
  r.inflight.clear();
  free_storage(r.full);
  r.gathered = false;
}

bool ZeroUnits::protected_run(const Run& r) const {
  return std::any_of(r.units.begin(), r.units.end(), [&](int u) { return backward_refs_[static_cast<std::size_t>(u)] > 0; });
}

void ZeroUnits::release_unit(int unit) {
  for (const std::size_t k : unit_runs_[static_cast<std::size_t>(unit)])
    if (!protected_run(runs_[k])) release(runs_[k]);
}

void ZeroUnits::reduce(Run& r) {
  if (!r.trainable) return;
  bool any = false;
  for (std::size_t k = 0; k < r.members.size(); ++k) any = any || param(r, k).grad().defined();
  if (!any) return;  // every rank runs the same graph: the same runs have gradients everywhere
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (std::size_t k = 0; k < r.members.size(); ++k) {
    at::Tensor g = param(r, k).grad();
    grads.push_back(!g.defined() ? g : g.is_sparse() ? g.to_dense().reshape({-1}) : g.reshape({-1}));
  }
  for (std::int64_t b = r.begin; b < r.end; b += bucket_) {
    const std::int64_t e = std::min(r.end, b + bucket_);
    at::Tensor send = at::zeros({e - b}, at::kFloat);
    for (std::size_t k = 0; k < r.members.size(); ++k) {
      if (!grads[k].defined()) continue;
      const std::int64_t pb = std::max(b, r.offsets[k]), pe = std::min(e, r.offsets[k] + grads[k].numel());
      if (pb < pe) send.narrow(0, pb - b, pe - pb).copy_(grads[k].narrow(0, pb - r.offsets[k], pe - pb));
    }
    const std::int64_t mb = std::clamp(b, lo_, hi_), me = std::clamp(e, lo_, hi_);
    if (dp_) {
      at::Tensor mine = at::empty({me - mb}, at::kFloat);
      dp_->reduce_scatter_v(send, mine, shard_counts(b, e, flat_.padded(), dp_->size()));
      flat_.grad_range(mb, me).add_(mine);
    } else {
      flat_.grad_range(mb, me).add_(send.narrow(0, mb - b, me - mb));
    }
  }
  for (std::size_t k = 0; k < r.members.size(); ++k) const_cast<at::Tensor&>(param(r, k)).mutable_grad() = at::Tensor();
}

void ZeroUnits::before_forward(int unit) {
  if (zero_ < 3) return;
  if (unit == first_unit_)  // a new pass: what a forward-only pass left gathered goes
    for (Run& r : runs_)
      if (!protected_run(r)) release(r);
  for (const std::size_t k : unit_runs_[static_cast<std::size_t>(unit)]) gather(runs_[k]);
  prefetch(unit + 1);  // travels while this unit computes
  // The head has no boundary before its backward (the loss's backward starts there): it stays.
  if (unit == m_.head_unit() && at::GradMode::is_enabled()) ++backward_refs_[static_cast<std::size_t>(unit)];
}

void ZeroUnits::after_forward(int unit) {
  if (zero_ == 3) release_unit(unit);
}

void ZeroUnits::before_backward(int unit) {
  // The embedding's backward reads indices only, never the weights.
  if (zero_ < 3 || unit <= 0) return;
  ++backward_refs_[static_cast<std::size_t>(unit)];
  for (const std::size_t k : unit_runs_[static_cast<std::size_t>(unit)]) gather(runs_[k]);
  prefetch(unit - 1);  // the next layer of the backward pass (not the embedding: prefetch skips 0)
}

void ZeroUnits::after_backward(int unit) {
  for (const std::size_t k : unit_runs_[static_cast<std::size_t>(unit)])
    if (runs_[k].units.front() == unit) reduce(runs_[k]);  // a tied embedding's waits for its lookup's backward
  if (zero_ < 3) return;
  int& refs = backward_refs_[static_cast<std::size_t>(unit)];
  if (refs > 0) --refs;
  release_unit(unit);
}

void ZeroUnits::finish() {
  for (Run& r : runs_) reduce(r);
  std::fill(backward_refs_.begin(), backward_refs_.end(), 0);
  if (zero_ == 3)
    for (Run& r : runs_) release(r);
}

void ZeroUnits::gather_trainable() {
  if (zero_ < 3) return;
  for (Run& r : runs_)
    if (r.trainable) gather(r);
}

at::Tensor ZeroUnits::gather_segment(std::size_t segment) const {
  const FlatSegment& s = flat_.segments().at(segment);
  const std::int64_t b = s.offset, e = s.offset + s.numel;
  if (!flat_.master_sharded()) return flat_.master_range(b, e).clone();
  at::Tensor out = at::empty({s.numel}, at::kFloat);
  const std::int64_t mb = std::clamp(b, lo_, hi_), me = std::clamp(e, lo_, hi_);
  if (dp_) dp_->allgather_v(flat_.master_range(mb, me), out, shard_counts(b, e, flat_.padded(), dp_->size()));
  else out.copy_(flat_.master_range(b, e));
  return out;
}

std::int64_t ZeroUnits::gathered_numel() const {  // in flight included: its memory is taken
  std::int64_t n = 0;
  for (const Run& r : runs_)
    if (r.gathered) n += r.end - r.begin;
  return n;
}

std::int64_t ZeroUnits::largest_unit_numel() const {
  std::int64_t most = 0;
  for (const auto& ks : unit_runs_) {
    std::int64_t n = 0;
    for (const std::size_t k : ks) n += runs_[k].end - runs_[k].begin;
    most = std::max(most, n);
  }
  return most;
}

}  // namespace medgpt::train
