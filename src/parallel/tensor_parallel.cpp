#include "parallel/tensor_parallel.hpp"

#include <torch/csrc/autograd/custom_function.h>

namespace medgpt::parallel {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Autograd functions take plain values: the communicator travels as its address.
std::int64_t handle(Comm& c) { return static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(&c)); }
Comm& comm_at(std::int64_t h) { return *reinterpret_cast<Comm*>(static_cast<std::intptr_t>(h)); }
Comm& comm_of(AutogradContext* ctx) { return comm_at(ctx->saved_data["comm"].toInt()); }

at::Tensor summed(const at::Tensor& x, Comm& c) {
  at::Tensor y = x.contiguous().clone();
  c.allreduce(y, ReduceOp::kSum);
  return y;
}

struct CopyToTp : public torch::autograd::Function<CopyToTp> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, std::int64_t comm) {
    ctx->saved_data["comm"] = comm;
    return x.view_as(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) { return {summed(g[0], comm_of(ctx)), at::Tensor()}; }
};

struct ReduceFromTp : public torch::autograd::Function<ReduceFromTp> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& x, std::int64_t comm) {
    return summed(x, comm_at(comm));
  }
  static variable_list backward(AutogradContext*, variable_list g) { return {g[0], at::Tensor()}; }
};

struct GatherFromTp : public torch::autograd::Function<GatherFromTp> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, std::int64_t comm) {
    Comm& c = comm_at(comm);
    ctx->saved_data["comm"] = comm;
    ctx->saved_data["width"] = x.size(-1);
    // allgather concatenates along dim 0: move the last dimension first and back.
    at::Tensor parts = c.allgather(x.movedim(-1, 0).contiguous());
    return parts.movedim(0, -1).contiguous();
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const std::int64_t w = ctx->saved_data["width"].toInt();
    return {g[0].narrow(-1, comm_of(ctx).rank() * w, w).contiguous(), at::Tensor()};
  }
};

}  // namespace

at::Tensor copy_to_tp(const at::Tensor& x, Comm& tp) { return tp.size() == 1 ? x : CopyToTp::apply(x, handle(tp)); }

at::Tensor reduce_from_tp(const at::Tensor& x, Comm& tp) { return tp.size() == 1 ? x : ReduceFromTp::apply(x, handle(tp)); }

at::Tensor gather_from_tp(const at::Tensor& x, Comm& tp) { return tp.size() == 1 ? x : GatherFromTp::apply(x, handle(tp)); }

at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& weight_shard, std::int64_t vocab_start, Comm& tp) {
  if (tp.size() == 1) return at::embedding(weight_shard, ids - vocab_start);
  const std::int64_t rows = weight_shard.size(0);
  at::Tensor local = ids - vocab_start;
  at::Tensor outside = local.lt(0).logical_or(local.ge(rows));
  at::Tensor out = at::embedding(weight_shard, local.masked_fill(outside, 0));
  out = out.masked_fill(outside.unsqueeze(-1), 0.0);
  return reduce_from_tp(out, tp);
}

}  // namespace medgpt::parallel
