// A linear layer that knows its tensor-parallel role and communicator, set once from the model's
// plan (model/tp_plan.hpp), as Megatron's ColumnParallelLinear / RowParallelLinear:
// - kColumn (q/k/v/gate/up): W [out/tp, in]. The input is the full activation, already inside the
//   tp region (the block enters it once for q/k/v and once for gate/up: one all-reduce of the input
//   gradient each, not one per layer); the output is this rank's slice of the features.
// - kRow (o/down): W [out, in/tp]. The input is this rank's slice; the partial products are summed
//   over tp (parallel::reduce_from_tp) and the bias is added once, after the sum.
// - kReplicated: W whole on every rank. Under tp (k/v when there are fewer kv heads than tp ranks)
//   each rank uses it for its own heads only, so W and b enter through parallel::copy_to_tp and
//   their gradients are summed over tp.
// QLoRA's NF4 weight and a LoRA adapter wrap the layer and take its role (model/nf4.hpp,
// model/lora.hpp); they never work a placement out for themselves.
#pragma once

#include <ATen/ATen.h>

#include <memory>

#include "parallel/comm.hpp"

namespace medgpt::model {

struct LoraAdapter;  // model/lora.hpp
struct Nf4Weight;    // model/nf4.hpp

enum class ParallelRole { kReplicated, kColumn, kRow };

// The dimension of a weight (is_bias: of a bias) that `role` splits over tp, -1: whole on every rank.
inline int role_split_dim(ParallelRole role, bool is_bias) {
  return role == ParallelRole::kColumn ? 0 : role == ParallelRole::kRow && !is_bias ? 1 : -1;
}

struct Linear {
  at::Tensor weight, bias;  // [out, in], [out] or undefined; under tp this rank's part
  ParallelRole role = ParallelRole::kReplicated;
  parallel::Comm* tp = nullptr;  // null without tensor parallelism (or tp 1)
  // QLoRA: the frozen weight stored as NF4 (`weight` is then undefined) and dequantized on the fly.
  std::shared_ptr<Nf4Weight> nf4{};
  // LoRA: y = base(x) + scale * B(A(dropout(x))) (model/lora.hpp).
  std::shared_ptr<LoraAdapter> lora{};

  at::Tensor operator()(const at::Tensor& x) const;
  // y + the adapter's update for input x (y itself without an enabled adapter), in y's dtype.
  at::Tensor with_adapter(const at::Tensor& y, const at::Tensor& x) const;  // model/lora.cpp
  // The dimension of the weight (is_bias: of the bias) split over tp, -1 when whole on every rank.
  int split_dim(bool is_bias = false) const;
  std::int64_t in_features() const;   // of the full layer (all tp ranks together)
  std::int64_t out_features() const;  // of the full layer
};

}  // namespace medgpt::model
