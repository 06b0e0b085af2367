#include "parallel/mpi_comm.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <utility>

#include "util/error.hpp"

namespace medgpt::parallel {

namespace {

const char* kSupported = "use float32, float64, bfloat16, float16, int32, int64, uint8 or bool";

bool is_widened(at::ScalarType st) { return st == at::kBFloat16 || st == at::kHalf; }

bool is_floating(at::ScalarType st) {
  return st == at::kFloat || st == at::kDouble || is_widened(st);
}

// The MPI type that moves a tensor's elements unchanged (no arithmetic).
MPI_Datatype move_type(at::ScalarType st, const std::string& where) {
  switch (st) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kInt:
      return MPI_INT32_T;
    case at::kLong:
      return MPI_INT64_T;
    case at::kByte:
      return MPI_UINT8_T;
    case at::kBool:
      return MPI_UINT8_T;  // one byte, 0 or 1
    case at::kBFloat16:
      return MPI_UINT16_T;  // raw 16-bit words
    case at::kHalf:
      return MPI_UINT16_T;
    default:
      util::fail(where, std::string("dtype ") + c10::toString(st) + " is not supported",
                 kSupported);
  }
}

// The MPI type that reduction arithmetic runs in (16-bit floats widen to float32).
MPI_Datatype reduce_type(at::ScalarType st, ReduceOp op, const std::string& where) {
  MPI_Datatype type = move_type(st, where);  // rejects unsupported dtypes first
  if (op == ReduceOp::kAvg && !is_floating(st))
    util::fail(where, std::string("AVG needs a floating dtype, got ") + c10::toString(st),
               "reduce with SUM and divide, or convert to float32 first");
  if (st == at::kBool && op != ReduceOp::kMax)
    util::fail(where, "a bool tensor reduces only with MAX (logical or)",
               "use MAX, or convert to int32 to count");
  return is_widened(st) ? MPI_FLOAT : type;
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::kMax ? MPI_MAX : MPI_SUM; }

void require_cpu(const at::Tensor& t, const std::string& where, const char* what) {
  if (!t.defined())
    util::fail(where, std::string(what) + " is an undefined tensor", "pass a tensor");
  if (!t.device().is_cpu())
    util::fail(where,
               std::string(what) + " is on " + t.device().str() + "; MpiComm moves CPU tensors",
               "copy it to the CPU, or build with -DMEDGPT_WITH_NCCL=ON for GPU collectives");
  if (t.layout() != at::kStrided)
    util::fail(where, std::string(what) + " is not a dense (strided) tensor",
               "call .to_dense() first");
}

// MPI counts are int: larger single messages are split by the ops that can (allreduce,
// broadcast) and refused by the others.
int int_count(int64_t n, const std::string& where) {
  if (n > INT_MAX)
    util::fail(where, std::to_string(n) + " elements exceed MPI's int count",
               "split the tensor into pieces under 2^31 elements");
  return static_cast<int>(n);
}

// Byte ranges of two contiguous tensors intersect (then MPI may not read one while writing the
// other).
bool overlaps(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  auto* a0 = static_cast<const char*>(a.data_ptr());
  auto* b0 = static_cast<const char*>(b.data_ptr());
  return a0 < b0 + b.numel() * b.element_size() && b0 < a0 + a.numel() * a.element_size();
}

// Writes a working buffer back into the caller's tensor when it was a copy (non-contiguous, or the
// float32 scratch); rounding to bf16/fp16 happens here, once.
void write_back(const at::Tensor& dst, const at::Tensor& buf) {
  if (!buf.is_same(dst)) dst.copy_(buf);
}

// Calls fn(pointer, count) over consecutive pieces of a contiguous buffer, each within MPI's int
// count; once with count 0 for an empty tensor, so every rank still takes part in the collective.
template <class Fn>
void for_each_piece(const at::Tensor& buf, Fn&& fn) {
  auto* p = static_cast<char*>(buf.data_ptr());
  const int64_t n = buf.numel(), esize = buf.element_size();
  int64_t done = 0;
  do {
    const int count = static_cast<int>(std::min<int64_t>(n - done, INT_MAX));
    fn(p + done * esize, count);
    done += count;
  } while (done < n);
}

std::string describe(const at::Tensor& t) {
  std::string s = std::string(c10::toString(t.scalar_type())) + "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Which collective a rank is in, for the verify() agreement check.
enum OpCode : int { kAllreduce = 1, kAllgather, kReduceScatter, kBroadcast, kAllgatherV, kReduceScatterV };

}  // namespace

MpiComm::MpiComm(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
  // Not on the predefined communicators: their handler is everyone else's too.
  if (comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_SELF)
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_SELF)
    MPI_Comm_free(&comm_);
}

std::unique_ptr<MpiComm> MpiComm::dup_world(std::string name) {
  // No return code to check: MPI_COMM_WORLD keeps MPI_ERRORS_ARE_FATAL (its handler is every
  // library's in the process), so a failing dup aborts the job with MPI's own message.
  MPI_Comm c;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  return std::make_unique<MpiComm>(c, std::move(name));
}

void MpiComm::check(int rc, const char* op) const {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  util::fail(where(op), "MPI error: " + std::string(text, len),
             "a peer may have failed; see the other ranks' output");
}

void MpiComm::agree(const char* op, int code, const at::Tensor& t, int64_t extra) {
  if (!verify()) return;
  // MAX of (v, -v) gives every rank both the largest and the smallest value in one allreduce.
  const int64_t mine[4] = {code, static_cast<int64_t>(t.scalar_type()), t.numel(), extra};
  int64_t both[8], out[8];
  for (int i = 0; i < 4; ++i) both[i] = mine[i], both[4 + i] = -mine[i];
  check(MPI_Allreduce(both, out, 8, MPI_INT64_T, MPI_MAX, comm_), op);
  static const char* field[4] = {"operation", "dtype", "element count", "op/root"};
  for (int i = 0; i < 4; ++i)
    if (out[i] != -out[4 + i])
      util::fail(where(op),
                 std::string("ranks disagree on the ") + field[i] + " (this rank: " +
                     std::to_string(mine[i]) + ", range " + std::to_string(-out[4 + i]) + ".." +
                     std::to_string(out[i]) + "; this rank's tensor " + describe(t) + ")",
                 "every rank must make the same call with the same dtype and shape");
}

void MpiComm::require_peer(const char* op, int peer, int tag) const {
  if (peer < 0 || peer >= size_ || peer == rank_)
    util::fail(where(op),
               "peer " + std::to_string(peer) + " is not another rank of this group of " +
                   std::to_string(size_) + " (this rank is " + std::to_string(rank_) + ")",
               "pass a rank of this communicator other than its own");
  int* tag_ub = nullptr;
  int found = 0;
  MPI_Comm_get_attr(comm_, MPI_TAG_UB, &tag_ub, &found);
  const int max_tag = found && tag_ub ? *tag_ub : 32767;  // 32767: the least MPI guarantees
  if (tag < 0 || tag > max_tag)
    util::fail(where(op),
               "tag " + std::to_string(tag) + " is outside 0.." + std::to_string(max_tag),
               "use a smaller non-negative tag");
}

at::Tensor MpiComm::scratch(int64_t numel) {
  if (scratch_.numel() < numel)
    scratch_ = at::empty({numel}, at::TensorOptions().dtype(at::kFloat));
  return scratch_.narrow(0, 0, numel);
}

void MpiComm::barrier() { check(MPI_Barrier(comm_), "barrier"); }

void MpiComm::allreduce(const at::Tensor& tensor, ReduceOp op) {
  const std::string w = where("allreduce");
  require_cpu(tensor, w, "tensor");
  MPI_Datatype type = reduce_type(tensor.scalar_type(), op, w);
  agree("allreduce", kAllreduce, tensor, static_cast<int64_t>(op));
  at::NoGradGuard no_grad;  // communication is not part of any autograd graph here

  if (size_ == 1) return;  // the reduction over one rank is the tensor itself

  // Contiguous working buffer: the tensor itself when it can be, else a copy (float32 for 16-bit).
  at::Tensor buf = is_widened(tensor.scalar_type())
                       ? scratch(tensor.numel()).view(tensor.sizes()).copy_(tensor)
                       : tensor.contiguous();
  // Piecewise so more than 2^31 elements still work (gradient buckets can be big).
  for_each_piece(buf, [&](void* p, int count) {
    check(MPI_Allreduce(MPI_IN_PLACE, p, count, type, mpi_op(op), comm_), "allreduce");
  });
  if (op == ReduceOp::kAvg) buf.div_(size_);
  write_back(tensor, buf);
}

void MpiComm::allgather(const at::Tensor& input, const at::Tensor& output) {
  const std::string w = where("allgather");
  require_cpu(input, w, "input");
  require_cpu(output, w, "output");
  MPI_Datatype type = move_type(input.scalar_type(), w);
  if (output.scalar_type() != input.scalar_type())
    util::fail(w, "output dtype " + describe(output) + " differs from input " + describe(input),
               "allocate the output with the input's dtype");
  if (!output.sizes().equals(gathered_sizes(input)))
    util::fail(w,
               "output " + describe(output) + " does not hold " + std::to_string(size_) +
                   " inputs " + describe(input) + " stacked along dim 0",
               "allocate the output with dim 0 = group size x input dim 0");
  agree("allgather", kAllgather, input, 0);
  at::NoGradGuard no_grad;

  const int count = int_count(input.numel(), w);
  at::Tensor out = output.contiguous();
  const void* send = nullptr;
  at::Tensor in;
  auto* own_slot = static_cast<char*>(out.data_ptr()) + int64_t(rank_) * count * out.element_size();
  if (input.is_contiguous() && out.is_same(output) && input.numel() > 0 &&
      input.data_ptr() == own_slot) {
    send = MPI_IN_PLACE;  // input already sits in this rank's slot of output (ZeRO-style)
  } else {
    in = input.contiguous();
    if (overlaps(in, out)) in = in.clone();  // MPI must not read what it is writing
    send = in.data_ptr();
  }
  check(MPI_Allgather(send, count, type, out.data_ptr(), count, type, comm_), "allgather");
  write_back(output, out);
}

void MpiComm::reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op) {
  const std::string w = where("reduce_scatter");
  require_cpu(input, w, "input");
  require_cpu(output, w, "output");
  MPI_Datatype type = reduce_type(input.scalar_type(), op, w);
  if (output.scalar_type() != input.scalar_type())
    util::fail(w, "output dtype " + describe(output) + " differs from input " + describe(input),
               "allocate the output with the input's dtype");
  if (!output.sizes().equals(scattered_sizes(input, "reduce_scatter")))
    util::fail(w,
               "output " + describe(output) + " is not 1/" + std::to_string(size_) + " of input " +
                   describe(input) + " along dim 0",
               "allocate the output with dim 0 = input dim 0 / group size");
  agree("reduce_scatter", kReduceScatter, input, static_cast<int64_t>(op));
  at::NoGradGuard no_grad;

  const int count = int_count(output.numel(), w);
  at::Tensor in, out;
  if (is_widened(input.scalar_type())) {
    at::Tensor s = scratch(input.numel() + output.numel());
    in = s.narrow(0, 0, input.numel()).view(input.sizes()).copy_(input);
    out = s.narrow(0, input.numel(), output.numel()).view(output.sizes());
  } else {
    in = input.contiguous();
    out = output.contiguous();
  }
  if (overlaps(in, out)) in = in.clone();
  check(MPI_Reduce_scatter_block(in.data_ptr(), out.data_ptr(), count, type, mpi_op(op), comm_),
        "reduce_scatter");
  if (op == ReduceOp::kAvg) out.div_(size_);
  write_back(output, out);
}

std::vector<int> MpiComm::check_counts(const char* op, const std::vector<int64_t>& counts, const at::Tensor& whole,
                                       const at::Tensor& part, const char* whole_name, const char* part_name) const {
  const std::string w = where(op);
  if (static_cast<int>(counts.size()) != size_)
    util::fail(w, std::to_string(counts.size()) + " counts for a group of " + std::to_string(size_), "pass one count per rank");
  std::vector<int> c;
  int64_t sum = 0;
  for (const int64_t n : counts) {
    if (n < 0) util::fail(w, "a negative count", "pass counts >= 0");
    c.push_back(int_count(n, w));
    sum += n;
  }
  int_count(sum, w);
  if (whole.dim() != 1 || whole.numel() != sum)
    util::fail(w, std::string(whole_name) + " " + describe(whole) + " is not 1-d with the counts' sum " + std::to_string(sum),
               "allocate it with sum(counts) elements");
  if (part.dim() != 1 || part.numel() != counts[static_cast<std::size_t>(rank_)])
    util::fail(w, std::string(part_name) + " " + describe(part) + " is not 1-d with this rank's count " + std::to_string(counts[static_cast<std::size_t>(rank_)]),
               "pass this rank's part");
  if (whole.scalar_type() != part.scalar_type())
    util::fail(w, "output dtype " + describe(whole) + " differs from " + describe(part), "use one dtype");
  return c;
}

void MpiComm::allgather_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts) {
  // The non-blocking form, waited for at once, on contiguous working buffers.
  const std::string w = where("allgather_v");
  require_cpu(input, w, "input");
  require_cpu(output, w, "output");
  at::NoGradGuard no_grad;
  at::Tensor out = output.contiguous();
  at::Tensor in = input.contiguous();
  if (overlaps(in, out)) in = in.clone();
  start_allgather_v(in, out, counts)->wait();
  write_back(output, out);
}

namespace {

// An MPI_Iallgatherv in flight, holding what MPI reads and writes until it completes.
class MpiRequest final : public Comm::Request {
 public:
  MpiRequest(at::Tensor in, at::Tensor out, std::vector<int> counts, std::vector<int> displs)
      : in_(std::move(in)), out_(std::move(out)), counts_(std::move(counts)), displs_(std::move(displs)) {}
  ~MpiRequest() override {
    if (req_ != MPI_REQUEST_NULL) MPI_Wait(&req_, MPI_STATUS_IGNORE);  // never free buffers MPI writes
  }
  void wait() override {
    if (req_ == MPI_REQUEST_NULL) return;
    const int rc = MPI_Wait(&req_, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) util::fail("parallel::Comm.start_allgather_v", "MPI error " + std::to_string(rc), "a peer may have failed; see the other ranks' output");
  }
  at::Tensor in_, out_;
  std::vector<int> counts_, displs_;
  MPI_Request req_ = MPI_REQUEST_NULL;
};

}  // namespace

std::unique_ptr<Comm::Request> MpiComm::start_allgather_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts) {
  const std::string w = where("start_allgather_v");
  require_cpu(input, w, "input");
  require_cpu(output, w, "output");
  if (!input.is_contiguous() || !output.is_contiguous()) util::fail(w, "needs contiguous tensors", "pass contiguous tensors");
  MPI_Datatype type = move_type(input.scalar_type(), w);
  std::vector<int> c = check_counts("start_allgather_v", counts, output, input, "output", "input");
  agree("start_allgather_v", kAllgatherV, output, 0);
  std::vector<int> displs(c.size(), 0);
  for (std::size_t r = 1; r < c.size(); ++r) displs[r] = displs[r - 1] + c[r - 1];
  const int mine = c[static_cast<std::size_t>(rank_)];
  auto req = std::make_unique<MpiRequest>(input, output, std::move(c), std::move(displs));
  check(MPI_Iallgatherv(req->in_.data_ptr(), mine, type, req->out_.data_ptr(), req->counts_.data(), req->displs_.data(), type, comm_, &req->req_),
        "start_allgather_v");
  return req;
}

void MpiComm::reduce_scatter_v(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& counts, ReduceOp op) {
  const std::string w = where("reduce_scatter_v");
  require_cpu(input, w, "input");
  require_cpu(output, w, "output");
  MPI_Datatype type = reduce_type(input.scalar_type(), op, w);
  const std::vector<int> c = check_counts("reduce_scatter_v", counts, input, output, "input", "output");
  agree("reduce_scatter_v", kReduceScatterV, input, static_cast<int64_t>(op));
  at::NoGradGuard no_grad;
  at::Tensor in, out;
  if (is_widened(input.scalar_type())) {
    at::Tensor s = scratch(input.numel() + output.numel());
    in = s.narrow(0, 0, input.numel()).copy_(input);
    out = s.narrow(0, input.numel(), output.numel());
  } else {
    in = input.contiguous();
    out = output.contiguous();
  }
  if (overlaps(in, out)) in = in.clone();
  check(MPI_Reduce_scatter(in.data_ptr(), out.data_ptr(), c.data(), type, mpi_op(op), comm_), "reduce_scatter_v");
  if (op == ReduceOp::kAvg) out.div_(size_);
  write_back(output, out);
}

void MpiComm::broadcast(const at::Tensor& tensor, int root) {
  const std::string w = where("broadcast");
  require_cpu(tensor, w, "tensor");
  MPI_Datatype type = move_type(tensor.scalar_type(), w);
  if (root < 0 || root >= size_)
    util::fail(
        w,
        "root " + std::to_string(root) + " is not a rank of this group of " + std::to_string(size_),
        "pass a root in 0.." + std::to_string(size_ - 1));
  agree("broadcast", kBroadcast, tensor, root);
  at::NoGradGuard no_grad;

  at::Tensor buf = tensor.contiguous();
  for_each_piece(
      buf, [&](void* p, int count) { check(MPI_Bcast(p, count, type, root, comm_), "broadcast"); });
  if (rank_ != root) write_back(tensor, buf);
}

void MpiComm::send(const at::Tensor& tensor, int peer, int tag) {
  const std::string w = where("send");
  require_cpu(tensor, w, "tensor");
  MPI_Datatype type = move_type(tensor.scalar_type(), w);
  require_peer("send", peer, tag);
  const int count = int_count(tensor.numel(), w);
  at::Tensor buf = tensor.contiguous();
  check(MPI_Send(buf.data_ptr(), count, type, peer, tag, comm_), "send");
}

void MpiComm::recv(const at::Tensor& tensor, int peer, int tag) {
  const std::string w = where("recv");
  require_cpu(tensor, w, "tensor");
  MPI_Datatype type = move_type(tensor.scalar_type(), w);
  require_peer("recv", peer, tag);
  const int count = int_count(tensor.numel(), w);
  at::NoGradGuard no_grad;

  // Look at the message first: receiving a larger one would be an MPI truncation error, a smaller
  // one would leave stale values. The message stays queued when we refuse it.
  MPI_Status status;
  check(MPI_Probe(peer, tag, comm_, &status), "recv");
  int bytes = 0;
  check(MPI_Get_count(&status, MPI_BYTE, &bytes), "recv");
  const int64_t expected = tensor.numel() * tensor.element_size();
  if (bytes != expected)
    util::fail(w,
               "the message from rank " + std::to_string(peer) + " (tag " + std::to_string(tag) +
                   ") has " + std::to_string(bytes) + " bytes, the receiving tensor " +
                   describe(tensor) + " holds " + std::to_string(expected),
               "send and receive tensors of the same dtype and shape");
  at::Tensor buf = tensor.contiguous();
  check(MPI_Recv(buf.data_ptr(), count, type, peer, tag, comm_, MPI_STATUS_IGNORE), "recv");
  write_back(tensor, buf);
}

void MpiComm::sendrecv(const at::Tensor& out, int to, const at::Tensor& in, int from, int tag) {
  const std::string w = where("sendrecv");
  require_cpu(out, w, "out");
  require_cpu(in, w, "in");
  MPI_Datatype out_type = move_type(out.scalar_type(), w), in_type = move_type(in.scalar_type(), w);
  require_peer("sendrecv", to, tag);
  require_peer("sendrecv", from, tag);
  const int out_count = int_count(out.numel(), w), in_count = int_count(in.numel(), w);
  at::NoGradGuard no_grad;
  // No probe first (it would wait before this rank's send is posted): a larger message is MPI's
  // truncation error, a smaller one is caught by the count.
  const at::Tensor ob = out.contiguous();
  at::Tensor ib = in.contiguous();
  MPI_Status status;
  check(MPI_Sendrecv(ob.data_ptr(), out_count, out_type, to, tag, ib.data_ptr(), in_count, in_type, from, tag, comm_, &status), "sendrecv");
  int got = 0;
  check(MPI_Get_count(&status, in_type, &got), "sendrecv");
  if (got != in_count)
    util::fail(w, "the message from rank " + std::to_string(from) + " has " + std::to_string(got) + " elements, the receiving tensor " + describe(in) +
                      " holds " + std::to_string(in_count),
               "send and receive tensors of the same dtype and shape");
  write_back(in, ib);
}

}  // namespace medgpt::parallel
