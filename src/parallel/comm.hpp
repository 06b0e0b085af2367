// parallel::Comm: the one communication interface everything above parallel/ talks to.
// Back ends: MpiComm (CPU tensors, Open MPI) now; an NCCL one (CUDA tensors) later. Nothing here is
// MPI-specific, so a layer written against Comm runs on either.
//
// Semantics shared by every back end:
// - Collectives are called by every rank of the communicator, in the same order, with tensors of
//   the same dtype and shape (allgather/reduce_scatter: same input shape). Ops that write into a
//   tensor do it in place; any strides are accepted (non-contiguous tensors go through a contiguous
//   copy that is written back).
// - bfloat16 and float16 reduce with float32 accumulation (see the back end for how).
// - A bad argument (dtype, shape, root, peer) is a util::Error thrown before any communication, so
//   a rank never blocks waiting for a call that its peers rejected. Disagreement *between* ranks
//   (one rank passes 10 elements, another 12) cannot be seen locally: set_verify(true) adds a small
//   agreement check before each collective that turns it into a util::Error on every rank.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace medgpt::parallel {

enum class ReduceOp { kSum, kMax, kAvg };

inline const char* to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kAvg:
      return "avg";
  }
  return "?";
}

class Comm {
 public:
  virtual ~Comm() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // A short label ("world", "tp", "pp", "dp") used in error messages.
  virtual const std::string& name() const = 0;

  virtual void barrier() = 0;

  // tensor <- op over ranks of tensor, in place. AVG needs a floating dtype.
  virtual void allreduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) = 0;

  // output <- concatenation along dim 0 of every rank's input, in rank order.
  // output: input's dtype, shape [size * input.size(0), input.sizes()[1:]...] (a 0-dim input
  // gathers to shape [size]). input may be this rank's slice of output (gathers in place).
  virtual void allgather(const at::Tensor& input, const at::Tensor& output) = 0;

  // input: [size * n, ...] on every rank -> output [n, ...]: chunk `rank` of the reduction.
  virtual void reduce_scatter(const at::Tensor& input, const at::Tensor& output,
                              ReduceOp op = ReduceOp::kSum) = 0;

  // Uneven forms over 1-d tensors, counts[r] elements for rank r (counts.size() == size()):
  // allgather_v: input [counts[rank]] -> output [sum(counts)], the ranks' inputs in rank order.
  // reduce_scatter_v: input [sum(counts)] on every rank -> output [counts[rank]], this rank's part
  // of the reduction. (ZeRO-2/3: a layer's span of the flat vector lies across 1 or 2 ranks' shards.)
  virtual void allgather_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts) = 0;
  virtual void reduce_scatter_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts,
                                ReduceOp op = ReduceOp::kSum) = 0;

  // A collective in flight: wait() returns once it is complete (its tensors may then be read).
  // Destroying a request waits for it.
  class Request {
   public:
    virtual ~Request() = default;
    virtual void wait() = 0;
  };
  // allgather_v started now and finished by the request's wait(), so it can overlap computation
  // (ZeRO-3 prefetches the next layer). Both tensors must be contiguous and stay alive until then;
  // the ranks start their requests in the same order.
  virtual std::unique_ptr<Request> start_allgather_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts) = 0;

  // tensor <- root's tensor, in place on every rank.
  virtual void broadcast(const at::Tensor& tensor, int root) = 0;

  // Point to point (pipeline activations). Blocking: recv needs the exact dtype and shape that was
  // sent (a size mismatch is a util::Error); messages between two ranks match by tag in order.
  virtual void send(const at::Tensor& tensor, int peer, int tag = 0) = 0;
  virtual void recv(const at::Tensor& tensor, int peer, int tag = 0) = 0;
  // Sends `out` to `to` while receiving `in` from `from`, as one call: two pipeline stages that
  // each send to the other (an activation one way, a gradient the other) cannot wait on each other.
  virtual void sendrecv(const at::Tensor& out, int to, const at::Tensor& in, int from, int tag = 0) = 0;

  // Allocating forms of allgather and reduce_scatter.
  at::Tensor allgather(const at::Tensor& input) {
    at::Tensor output = at::empty(gathered_sizes(input), input.options());
    allgather(input, output);
    return output;
  }
  at::Tensor reduce_scatter(const at::Tensor& input, ReduceOp op = ReduceOp::kSum) {
    at::Tensor output = at::empty(scattered_sizes(input, "reduce_scatter"), input.options());
    reduce_scatter(input, output, op);
    return output;
  }

  // Cross-rank agreement check before each collective (costs one tiny extra allreduce per call):
  // for tests and debugging a hang.
  void set_verify(bool on) { verify_ = on; }
  bool verify() const { return verify_; }

 protected:
  // "parallel::Comm(tp).allreduce": where an error happened.
  std::string where(const char* op) const { return "parallel::Comm(" + name() + ")." + op; }

  std::vector<int64_t> gathered_sizes(const at::Tensor& input) const {
    std::vector<int64_t> s = input.sizes().vec();
    if (s.empty())
      s.push_back(size());
    else
      s[0] *= size();
    return s;
  }

  std::vector<int64_t> scattered_sizes(const at::Tensor& input, const char* op) const {
    std::vector<int64_t> s = input.sizes().vec();
    if (s.empty() || s[0] % size() != 0)
      util::fail(where(op),
                 "input dim 0 must be a multiple of the group size " + std::to_string(size()) +
                     ", got shape " + shape_string(input),
                 "pad dim 0 to a multiple of the group size");
    s[0] /= size();
    return s;
  }

  static std::string shape_string(const at::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
  }

 private:
  bool verify_ = false;
};

}  // namespace medgpt::parallel
