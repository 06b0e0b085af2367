// ZeRO-2 and ZeRO-3 (DeepSpeed's stages; FSDP's hooks) over the model's units: the embedding, each
// decoder layer, the final norm and the head (model/unit_hooks.hpp).
// - ZeRO-2: the parameters' gradients come from autograd; when a unit's backward is done (its
//   boundary fires) they are reduce-scattered into this rank's shard of the flat fp32 gradient
//   vector and dropped, so no rank holds more than a layer's full gradients at a time.
// - ZeRO-3: the parameters are sharded too. Each unit's tensors (trainable and frozen) live in
//   "runs", one buffer per contiguous span, whose storage exists only inside a gather window:
//   all-gathered before the unit's forward and again before its backward, released after each.
//   Autograd's saved tensors refer to the same storage, refilled before they are read (FSDP's
//   resize-to-zero). The trainable values come from this rank's shard of the fp32 master vector
//   (in the compute dtype); frozen ones (the LoRA base) from a sharded vector of their own. The
//   next unit's gather is started (non-blocking) as soon as the current one's is complete, so it
//   travels while the current unit computes: at most two units are whole at a time.
// Shards are contiguous ranges of the flat vectors (as ZeRO-1's: [k n, (k+1) n) for dp rank k), so
// a layer's span lies across one or two ranks' shards: gathers and reductions are uneven
// collectives (Comm::allgather_v / reduce_scatter_v), done in buckets.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/transformer.hpp"
#include "parallel/comm.hpp"
#include "train/flat_params.hpp"

namespace medgpt::train {

// util::Error naming --train.zero when the layout cannot run the stage: ZeRO-2/3 with pipeline
// stages (as DeepSpeed: pipelines take ZeRO-1), ZeRO-3 with QLoRA's NF4 base or with a whole
// reference model beside the policy.
void check_zero_layout(int zero, int pp, bool qlora, bool whole_reference);

class ZeroUnits final : public model::UnitHooks {
 public:
  // Becomes m's unit hooks. `flat` holds m's trainable tensors (compute dtype already set); this
  // rank keeps its ZeRO shard of it (train::shard_range, as DataParallel::shard). Shards flat's
  // gradients (and for zero 3 its master and every parameter of m).
  ZeroUnits(model::Transformer& m, FlatParams& flat, parallel::Comm* dp, int zero, std::int64_t bucket_bytes = 25 << 20);
  ~ZeroUnits() override;
  ZeroUnits(const ZeroUnits&) = delete;
  ZeroUnits& operator=(const ZeroUnits&) = delete;

  void before_forward(int unit) override;
  void after_forward(int unit) override;
  void before_backward(int unit) override;
  void after_backward(int unit) override;
  // After each micro-batch (its backward pass, or a forward-only pass): reduces the gradients no
  // boundary reduced (the embedding's, a frozen first layer's), releases every gathered parameter.
  void finish();
  // ZeRO-3: every trainable parameter gathered until the next finish() (small adapters, to save).
  void gather_trainable();
  // Collective over dp: trainable tensor `segment` of flat, whole, fp32, from the master shards.
  at::Tensor gather_segment(std::size_t segment) const;

  int zero() const { return zero_; }
  // ZeRO-3, for tests and the memory report: elements of full parameters held now; the most any
  // one unit holds; this rank's shard of the frozen parameters.
  std::int64_t gathered_numel() const;
  std::int64_t largest_unit_numel() const;
  std::int64_t frozen_shard_numel() const { return frozen_shard_.numel(); }

 private:
  struct Run {
    bool trainable = true;
    std::int64_t begin = 0, end = 0;  // span in its flat vector (FlatParams, or the frozen one)
    std::vector<std::size_t> members; // indices into flat.params() or frozen_
    std::vector<std::int64_t> offsets;  // each member's offset in the span's flat vector
    std::vector<int> units;           // the units that use it (a tied embedding: 0 and the head)
    at::Tensor full;                  // ZeRO-3: [end - begin], compute dtype; storage only when gathered
    bool gathered = false;            // storage allocated: the values are there, or arriving (inflight)
    std::vector<std::unique_ptr<parallel::Comm::Request>> inflight;
  };
  void gather(Run& r);        // the values, now
  void start_gather(Run& r);  // the values on their way (gather() completes them)
  void prefetch(int unit);
  void release(Run& r);
  void release_unit(int unit);
  bool protected_run(const Run& r) const;
  void reduce(Run& r);
  const at::Tensor& param(const Run& r, std::size_t i) const;

  model::Transformer& m_;
  FlatParams& flat_;
  parallel::Comm* dp_;
  int zero_;
  std::int64_t lo_, hi_, bucket_;
  std::vector<Run> runs_;
  std::vector<std::vector<std::size_t>> unit_runs_;  // unit -> runs
  std::vector<int> backward_refs_;                   // unit -> backward passes between before and after
  int first_unit_ = 0;
  // ZeRO-3's frozen parameters (LoRA's base): flat in the compute dtype, padded to dp, this rank's
  // range [frozen_lo_, frozen_lo_ + frozen_shard_.numel()).
  model::NamedTensors frozen_;
  std::int64_t frozen_padded_ = 0, frozen_lo_ = 0;
  at::Tensor frozen_shard_;
};

}  // namespace medgpt::train
