// parallel::MpiComm: the Comm back end for CPU tensors, on an MPI communicator.
//
// Wire types: float32/float64/int32/int64/uint8 map to their MPI types; bool travels as uint8.
// bfloat16 and float16 move as raw 16-bit words, and reduce by widening: the tensor is copied to a
// float32 buffer, reduced with MPI's float32 SUM/MAX, then rounded back once. That gives float32
// accumulation whatever order MPI's reduction tree adds in (a custom bf16 MPI_Op would round every
// partial sum to bf16 and lose bits with each level of the tree); the price is 2x the bytes on the
// wire for bf16 reductions, acceptable on the CPU path (the float32 buffer is reused across calls).
// AVG is SUM then one division by size.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "parallel/comm.hpp"

namespace medgpt::parallel {

class MpiComm final : public Comm {
 public:
  // Takes ownership of `comm` (freed on destruction, unless it is MPI_COMM_WORLD or MPI_COMM_SELF,
  // which are left untouched). Sets MPI_ERRORS_RETURN on it, so MPI failures become util::Error
  // (which app/ turns into one line and MPI_Abort) instead of a bare abort.
  MpiComm(MPI_Comm comm, std::string name);
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  // A private duplicate of MPI_COMM_WORLD: our traffic never matches anyone else's messages.
  static std::unique_ptr<MpiComm> dup_world(std::string name = "world");

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }

  void barrier() override;
  void allreduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) override;
  void allgather(const at::Tensor& input, const at::Tensor& output) override;
  void reduce_scatter(const at::Tensor& input, const at::Tensor& output,
                      ReduceOp op = ReduceOp::kSum) override;
  void allgather_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts) override;
  void reduce_scatter_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts,
                        ReduceOp op = ReduceOp::kSum) override;
  std::unique_ptr<Request> start_allgather_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts) override;
  void broadcast(const at::Tensor& tensor, int root) override;
  void send(const at::Tensor& tensor, int peer, int tag = 0) override;
  void recv(const at::Tensor& tensor, int peer, int tag = 0) override;
  void sendrecv(const at::Tensor& out, int to, const at::Tensor& in, int from, int tag = 0) override;
  using Comm::allgather;  // the allocating overloads
  using Comm::reduce_scatter;

  // The underlying communicator, e.g. to bootstrap NCCL (broadcast of the ncclUniqueId).
  MPI_Comm native() const { return comm_; }

 private:
  void check(int rc, const char* op) const;
  // With verify(): all ranks agree on the call (op, dtype, element count, extra) or all throw.
  void agree(const char* op, int code, const at::Tensor& t, int64_t extra);
  void require_peer(const char* op, int peer, int tag) const;
  // The counts of an uneven collective as MPI ints, after checking them against the tensors.
  std::vector<int> check_counts(const char* op, const std::vector<int64_t>& counts, const at::Tensor& whole, const at::Tensor& part,
                                const char* whole_name, const char* part_name) const;
  // float32 working space for 16-bit reductions, reused across calls (allocating and faulting in a
  // fresh buffer each time cost as much as the conversion). Grows to the largest request; kept.
  at::Tensor scratch(int64_t numel);

  MPI_Comm comm_;
  std::string name_;
  int rank_ = 0;
  int size_ = 1;
  at::Tensor scratch_;
};

}  // namespace medgpt::parallel
