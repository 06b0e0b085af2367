// parallel::MpiComm under mpirun: every collective against arithmetic computed independently.
// Rank r contributes values f(r, i) that every dtype holds exactly (small non-negative integers,
// halves), so the expected result is exact and derived in closed form (or a plain loop over r) in
// double, never through the code under test. All ranks call every collective before any assertion,
// so a failing check cannot leave a peer waiting.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "parallel/mpi_comm.hpp"
#include "util/error.hpp"

namespace medgpt::parallel {
namespace {

at::Tensor make(const std::vector<double>& v, at::ScalarType st, std::vector<int64_t> sizes) {
  return at::tensor(v, at::kDouble).to(st).reshape(sizes);
}

std::vector<double> values(const at::Tensor& t) {
  at::Tensor d = t.to(at::kDouble).contiguous();
  const double* p = d.data_ptr<double>();
  return std::vector<double>(p, p + d.numel());
}

// Exact element-wise comparison, reporting the first mismatches.
::testing::AssertionResult same(const at::Tensor& got, const std::vector<double>& want) {
  std::vector<double> g = values(got);
  if (g.size() != want.size())
    return ::testing::AssertionFailure() << "size " << g.size() << ", expected " << want.size();
  int bad = 0;
  std::string detail;
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] != want[i] && bad++ < 5)
      detail += " [" + std::to_string(i) + "] " + std::to_string(g[i]) +
                " != " + std::to_string(want[i]) + ";";
  if (bad) return ::testing::AssertionFailure() << bad << " mismatches:" << detail;
  return ::testing::AssertionSuccess();
}

// Runs fn expecting a util::Error whose message contains `needle`.
::testing::AssertionResult throws_error(const std::function<void()>& fn,
                                        const std::string& needle) {
  try {
    fn();
  } catch (const util::Error& e) {
    if (std::string(e.what()).find(needle) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message '" << e.what() << "' lacks '" << needle << "'";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-util::Error: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

bool is_floating(at::ScalarType st) {
  return st == at::kFloat || st == at::kDouble || st == at::kBFloat16 || st == at::kHalf;
}

class CommTest : public ::testing::Test {
 protected:
  void SetUp() override {
    comm = MpiComm::dup_world();
    r = comm->rank();
    n = comm->size();
  }
  std::unique_ptr<MpiComm> comm;
  int r = 0, n = 1;
};

class CommDtype : public CommTest, public ::testing::WithParamInterface<at::ScalarType> {};

// ---- allreduce ----

TEST_P(CommDtype, AllreduceSum) {
  const at::ScalarType st = GetParam();
  const int64_t len = 50;
  std::vector<double> mine, want;
  for (int64_t i = 0; i < len; ++i) {
    mine.push_back((r + 1) * (i % 7 + 1));            // f(r, i)
    want.push_back((i % 7 + 1) * n * (n + 1) / 2.0);  // sum over r of f(r, i)
  }
  at::Tensor t = make(mine, st, {5, 10});
  comm->allreduce(t, ReduceOp::kSum);
  EXPECT_EQ(t.scalar_type(), st);
  EXPECT_TRUE(same(t, want));
}

TEST_P(CommDtype, AllreduceMax) {
  const at::ScalarType st = GetParam();
  std::vector<double> mine, want;
  for (int i = 0; i < 40; ++i) {
    mine.push_back((i + 3 * r) % 11);
    double m = 0;
    for (int q = 0; q < n; ++q) m = std::max(m, double((i + 3 * q) % 11));
    want.push_back(m);
  }
  at::Tensor t = make(mine, st, {40});
  comm->allreduce(t, ReduceOp::kMax);
  EXPECT_TRUE(same(t, want));
}

TEST_P(CommDtype, AllreduceAvgOrRejects) {
  const at::ScalarType st = GetParam();
  std::vector<double> mine, want;
  for (int i = 0; i < 30; ++i) {
    mine.push_back((r + 1) * (i % 7 + 1));
    want.push_back((i % 7 + 1) * (n + 1) / 2.0);  // mean of 1..n, times (i % 7 + 1)
  }
  at::Tensor t = make(mine, st, {30});
  if (is_floating(st)) {
    comm->allreduce(t, ReduceOp::kAvg);
    EXPECT_TRUE(same(t, want));
  } else {
    EXPECT_TRUE(throws_error([&] { comm->allreduce(t, ReduceOp::kAvg); }, "AVG needs a floating"));
    EXPECT_TRUE(same(t, mine));  // untouched
  }
}

TEST_P(CommDtype, AllreduceNonContiguousWritesBack) {
  const at::ScalarType st = GetParam();
  // A column slice of a [6, 4] matrix: strided, so the op works on a copy and writes it back;
  // the other columns must stay as they were.
  std::vector<double> base;
  for (int i = 0; i < 24; ++i) base.push_back((r + 1) * (i % 5 + 1));
  at::Tensor m = make(base, st, {6, 4});
  at::Tensor col = m.select(1, 2);
  ASSERT_FALSE(col.is_contiguous());
  comm->allreduce(col, ReduceOp::kSum);
  std::vector<double> want = base;
  for (int row = 0; row < 6; ++row) {
    const int i = row * 4 + 2;
    want[i] = (i % 5 + 1) * n * (n + 1) / 2.0;
  }
  EXPECT_TRUE(same(m, want));
}

// ---- allgather ----

TEST_P(CommDtype, AllgatherIntoOutputAndNew) {
  const at::ScalarType st = GetParam();
  std::vector<double> mine;
  for (int j = 0; j < 6; ++j) mine.push_back(r * 10 + j);
  at::Tensor in = make(mine, st, {2, 3});
  std::vector<double> want;  // rows of rank q: q*10 + a*3 + b
  for (int q = 0; q < n; ++q)
    for (int j = 0; j < 6; ++j) want.push_back(q * 10 + j);

  at::Tensor out = at::empty({2 * n, 3}, in.options());
  comm->allgather(in, out);
  at::Tensor fresh = comm->allgather(in);
  // Strided input and strided output (a transposed buffer).
  at::Tensor strided_in = in.t().contiguous().t();
  at::Tensor strided_out = at::empty({3, 2 * n}, in.options()).t();
  comm->allgather(strided_in, strided_out);

  EXPECT_TRUE(same(out, want));
  EXPECT_EQ(fresh.sizes(), out.sizes());
  EXPECT_EQ(fresh.scalar_type(), st);
  EXPECT_TRUE(same(fresh, want));
  EXPECT_FALSE(strided_in.is_contiguous());
  EXPECT_TRUE(same(strided_out, want));
}

TEST_P(CommDtype, AllgatherInPlaceSlot) {
  // ZeRO-style: the input is this rank's slice of the output.
  const at::ScalarType st = GetParam();
  at::Tensor out = at::zeros({3 * n}, at::TensorOptions().dtype(st));
  at::Tensor slot = out.narrow(0, 3 * r, 3);
  slot.copy_(make({double(r), double(r + 1), double(r + 2)}, st, {3}));
  comm->allgather(slot, out);
  std::vector<double> want;
  for (int q = 0; q < n; ++q)
    for (int j = 0; j < 3; ++j) want.push_back(q + j);
  EXPECT_TRUE(same(out, want));
}

// ---- reduce_scatter ----

TEST_P(CommDtype, ReduceScatterSumAndAvg) {
  const at::ScalarType st = GetParam();
  const int rows = 2, cols = 3;
  std::vector<double> mine;
  for (int j = 0; j < rows * n; ++j)
    for (int c = 0; c < cols; ++c) mine.push_back((r + 1) * ((j * cols + c) % 9 + 1));
  at::Tensor in = make(mine, st, {rows * n, cols});
  std::vector<double> want_sum, want_avg;  // rows [r*rows, (r+1)*rows) of the sum over ranks
  for (int a = 0; a < rows; ++a)
    for (int c = 0; c < cols; ++c) {
      const int j = r * rows + a;
      want_sum.push_back(((j * cols + c) % 9 + 1) * n * (n + 1) / 2.0);
      want_avg.push_back(((j * cols + c) % 9 + 1) * (n + 1) / 2.0);
    }

  at::Tensor sum = comm->reduce_scatter(in, ReduceOp::kSum);
  at::Tensor strided_in = in.t().contiguous().t();
  at::Tensor strided_out = at::empty({cols, rows}, in.options()).t();
  comm->reduce_scatter(strided_in, strided_out, ReduceOp::kSum);

  EXPECT_EQ(sum.sizes(), (std::vector<int64_t>{rows, cols}));
  EXPECT_TRUE(same(sum, want_sum));
  EXPECT_TRUE(same(strided_out, want_sum));
  EXPECT_TRUE(same(in, mine));  // input untouched
  if (is_floating(st)) {
    at::Tensor avg = comm->reduce_scatter(in, ReduceOp::kAvg);
    EXPECT_TRUE(same(avg, want_avg));
  }
}

// ---- broadcast ----

TEST_P(CommDtype, BroadcastFromEveryRoot) {
  const at::ScalarType st = GetParam();
  for (int root = 0; root < n; ++root) {
    std::vector<double> from_root, junk(20, 1.0);
    for (int i = 0; i < 20; ++i) from_root.push_back(root * 7 + i);
    at::Tensor t = make(r == root ? from_root : junk, st, {4, 5});
    at::Tensor strided = at::empty({5, 4}, t.options()).t();  // same values, strided storage
    strided.copy_(t);
    comm->broadcast(t, root);
    comm->broadcast(strided, root);
    EXPECT_TRUE(same(t, from_root)) << "root " << root;
    EXPECT_TRUE(same(strided, from_root)) << "root " << root;
  }
}

// ---- send / recv ----

TEST_P(CommDtype, SendRecvPairsWithTags) {
  // Pairs (0,1), (2,3): the even rank sends two tagged messages, the odd one receives them in the
  // opposite order (matching is by tag), then replies.
  const at::ScalarType st = GetParam();
  const int partner = r ^ 1;
  if (partner >= n) GTEST_SKIP() << "no partner for rank " << r;
  auto msg = [&](int from, int tag) {
    std::vector<double> v;
    for (int i = 0; i < 12; ++i) v.push_back(from * 3 + tag * 20 + i);
    return v;
  };
  at::Tensor a = at::zeros({3, 4}, at::TensorOptions().dtype(st));
  at::Tensor b = at::zeros({12}, at::TensorOptions().dtype(st));
  at::Tensor reply = at::zeros({4, 3}, at::TensorOptions().dtype(st)).t();  // strided receiver
  if (r % 2 == 0) {
    comm->send(make(msg(r, 1), st, {3, 4}), partner, 1);
    comm->send(make(msg(r, 2), st, {12}), partner, 2);
    comm->recv(reply, partner, 3);
    EXPECT_TRUE(same(reply, msg(partner, 3)));
  } else {
    comm->recv(b, partner, 2);
    comm->recv(a, partner, 1);
    comm->send(make(msg(r, 3), st, {3, 4}), partner, 3);
    EXPECT_TRUE(same(a, msg(partner, 1)));
    EXPECT_TRUE(same(b, msg(partner, 2)));
  }
}

std::string dtype_name(const ::testing::TestParamInfo<at::ScalarType>& info) {
  return c10::toString(info.param);
}

// Uneven collectives (ZeRO-2/3's layer spans): rank k contributes k elements (rank 0 none), so
// counts differ and one is zero; values k * 10 + i are exact in every dtype used.
TEST_P(CommDtype, AllgatherVConcatenatesUnevenParts) {
  const at::ScalarType st = GetParam();
  std::vector<int64_t> counts;
  std::vector<double> want;
  for (int k = 0; k < n; ++k) {
    counts.push_back(k);
    for (int i = 0; i < k; ++i) want.push_back(k * 10 + i);
  }
  std::vector<double> mine;
  for (int i = 0; i < r; ++i) mine.push_back(r * 10 + i);
  at::Tensor in = at::tensor(mine, at::kDouble).to(st);
  at::Tensor out = at::zeros({static_cast<int64_t>(want.size())}, at::TensorOptions().dtype(st));
  comm->allgather_v(in, out, counts);
  EXPECT_TRUE(same(out, want));
}

TEST_P(CommDtype, ReduceScatterVSumsEachRanksPart) {
  const at::ScalarType st = GetParam();
  if (!is_floating(st) && st != at::kInt && st != at::kLong) return;
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (int k = 0; k < n; ++k) counts.push_back(k), total += k;
  // Element i of every rank's input is (rank + 1) * i: the sum over ranks is i * n (n + 1) / 2.
  at::Tensor in = (at::arange(total, at::kDouble) * (r + 1)).to(st);
  at::Tensor out = at::zeros({r}, at::TensorOptions().dtype(st));
  comm->reduce_scatter_v(in, out, counts);
  std::vector<double> want;
  const int64_t first = static_cast<int64_t>(r) * (r - 1) / 2;
  for (int i = 0; i < r; ++i) want.push_back(static_cast<double>((first + i) * n * (n + 1) / 2));
  EXPECT_TRUE(same(out, want));
}

TEST_F(CommTest, UnevenCollectivesRefuseWrongCounts) {
  std::vector<int64_t> counts(static_cast<size_t>(n), 2);
  EXPECT_TRUE(throws_error([&] { comm->allgather_v(at::zeros({2}), at::zeros({2 * n + 1}), counts); }, "counts' sum"));
  EXPECT_TRUE(throws_error([&] { comm->allgather_v(at::zeros({3}), at::zeros({2 * n}), counts); }, "this rank's count"));
  EXPECT_TRUE(throws_error([&] { comm->reduce_scatter_v(at::zeros({2 * n}), at::zeros({2}), {2}); }, "counts for a group"));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CommDtype,
                         ::testing::Values(at::kFloat, at::kBFloat16, at::kLong, at::kByte,
                                           at::kDouble, at::kInt, at::kHalf),
                         dtype_name);

// ---- 16-bit floats accumulate in float32 ----

// Rank 0 contributes `big` (where the 16-bit format's spacing is 2), every other rank 1. Adding
// the ones to `big` one at a time in 16 bits loses each of them; float32 accumulation keeps them
// and rounds once. Expected: the exact sum rounded once to the format.
void check_wide_accumulation(MpiComm& comm, at::ScalarType st, double big) {
  const int r = comm.rank(), n = comm.size();
  at::Tensor t = at::full({64}, r == 0 ? big : 1.0, at::TensorOptions().dtype(st));
  at::Tensor u = at::full({64}, r == 0 ? big : 1.0, at::TensorOptions().dtype(st));
  comm.allreduce(t, ReduceOp::kSum);
  comm.allreduce(u, ReduceOp::kAvg);
  const double exact = big + (n - 1);
  const double once = at::tensor({exact}, at::kDouble).to(st).item<double>();
  const double avg_once = at::tensor({float(exact / n)}, at::kFloat).to(st).item<double>();
  EXPECT_TRUE(same(t, std::vector<double>(64, once))) << c10::toString(st);
  EXPECT_TRUE(same(u, std::vector<double>(64, avg_once))) << c10::toString(st);
  if (n == 4) {
    EXPECT_EQ(once, big + 4);  // 16-bit sequential sums would give `big`
  }
}

TEST_F(CommTest, BFloat16AccumulatesInFloat32) {
  check_wide_accumulation(*comm, at::kBFloat16, 256);
}
TEST_F(CommTest, Float16AccumulatesInFloat32) { check_wide_accumulation(*comm, at::kHalf, 2048); }

TEST_F(CommTest, BFloat16FractionsWithTolerance) {
  // Values bf16 cannot hold exactly: compare with the float64 sum within bf16's resolution.
  std::vector<double> mine, want;
  for (int i = 0; i < 100; ++i) {
    mine.push_back(0.01 * (i + 1) * (r + 1));
    double s = 0;
    for (int q = 0; q < n; ++q)  // what each rank actually sends: its value rounded to bf16
      s += at::tensor({0.01 * (i + 1) * (q + 1)}, at::kDouble).to(at::kBFloat16).item<double>();
    want.push_back(s);
  }
  at::Tensor t = make(mine, at::kBFloat16, {100});
  comm->allreduce(t, ReduceOp::kSum);
  std::vector<double> got = values(t);
  for (int i = 0; i < 100; ++i)
    EXPECT_NEAR(got[i], want[i], std::abs(want[i]) * (1.0 / 256)) << "element " << i;
}

// ---- bool ----

TEST_F(CommTest, BoolMaxIsLogicalOrAndMoves) {
  // Stop flags: true on the last rank only; MAX makes every rank see true.
  at::Tensor flag = at::full({3}, r == n - 1, at::TensorOptions().dtype(at::kBool));
  comm->allreduce(flag, ReduceOp::kMax);
  at::Tensor none = at::zeros({3}, at::TensorOptions().dtype(at::kBool));
  comm->allreduce(none, ReduceOp::kMax);
  at::Tensor gathered =
      comm->allgather(at::full({2}, r % 2 == 1, at::TensorOptions().dtype(at::kBool)));
  EXPECT_TRUE(same(flag, {1, 1, 1}));
  EXPECT_TRUE(same(none, {0, 0, 0}));
  std::vector<double> want;
  for (int q = 0; q < n; ++q) want.insert(want.end(), {double(q % 2), double(q % 2)});
  EXPECT_TRUE(same(gathered, want));
  EXPECT_TRUE(throws_error([&] { comm->allreduce(flag, ReduceOp::kSum); }, "only with MAX"));
}

// ---- errors: thrown on every rank alike, before communicating ----

TEST_F(CommTest, RejectsUnsupportedDtype) {
  at::Tensor t = at::zeros({4}, at::TensorOptions().dtype(at::kShort));
  EXPECT_TRUE(throws_error([&] { comm->allreduce(t); }, "dtype Short is not supported"));
  EXPECT_TRUE(throws_error([&] { comm->broadcast(t, 0); }, "not supported"));
  EXPECT_TRUE(throws_error([&] { comm->allgather(t); }, "not supported"));
  at::Tensor undefined;
  EXPECT_TRUE(throws_error([&] { comm->allreduce(undefined); }, "undefined"));
}

TEST_F(CommTest, RejectsShapeMismatch) {
  at::Tensor in = at::zeros({2, 3});
  EXPECT_TRUE(throws_error(
      [&] {
        comm->allgather(in, at::zeros({2 * n + 1, 3}));
      },
      "does not hold"));
  EXPECT_TRUE(throws_error(
      [&] {
        comm->allgather(in, at::zeros({2 * n, 3}, at::kDouble));
      },
      "dtype"));
  EXPECT_TRUE(throws_error(
      [&] {
        comm->reduce_scatter(at::zeros({2 * n, 3}), at::zeros({2, 4}));
      },
      "is not 1/"));
  EXPECT_TRUE(
      throws_error([&] { comm->reduce_scatter(at::scalar_tensor(0.0)); }, "multiple of the group"));
  if (n > 1) {
    EXPECT_TRUE(throws_error([&] { comm->reduce_scatter(at::zeros({2 * n + 1})); },
                             "multiple of the group size"));
  }
}

TEST_F(CommTest, RejectsBadRootPeerTag) {
  at::Tensor t = at::zeros({4});
  EXPECT_TRUE(throws_error([&] { comm->broadcast(t, n); }, "root"));
  EXPECT_TRUE(throws_error([&] { comm->broadcast(t, -1); }, "root"));
  EXPECT_TRUE(throws_error([&] { comm->send(t, r); }, "peer"));
  EXPECT_TRUE(throws_error([&] { comm->send(t, n); }, "peer"));
  EXPECT_TRUE(throws_error([&] { comm->recv(t, -1); }, "peer"));
  if (n > 1) {
    EXPECT_TRUE(throws_error([&] { comm->send(t, (r + 1) % n, -5); }, "tag"));
  }
}

TEST_F(CommTest, RecvOfWrongSizeThrowsAndMessageStaysQueued) {
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  if (r == 0) {
    comm->send(at::arange(5, at::kFloat), 1, 7);  // small: delivered eagerly
  } else if (r == 1) {
    at::Tensor small = at::zeros({4});
    EXPECT_TRUE(throws_error([&] { comm->recv(small, 0, 7); }, "has 20 bytes"));
    at::Tensor right = at::zeros({5});
    comm->recv(right, 0, 7);  // drains the message the failed call left queued
    EXPECT_TRUE(same(right, {0, 1, 2, 3, 4}));
  }
  comm->barrier();
}

TEST_F(CommTest, SendRecvAroundARingDoesNotWait) {
  // Every rank sends 4 MB (past the eager limit: a plain blocking send would wait for its receive)
  // to the next rank while receiving from the previous one, into a strided tensor: the pipeline's
  // paired activation/gradient exchange.
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  const std::int64_t len = 1 << 20;
  const at::Tensor out = at::arange(len, at::kFloat) + 1000.0 * r;
  at::Tensor in = at::zeros({2, len}, at::kFloat).select(0, 1);
  at::Tensor strided = at::zeros({len / 2, 2}, at::kFloat).t();
  comm->sendrecv(out, next, in, prev, 5);
  EXPECT_TRUE(in.equal(at::arange(len, at::kFloat) + 1000.0 * prev));
  comm->sendrecv(out.view({2, len / 2}), next, strided, prev, 6);
  EXPECT_TRUE(strided.reshape({-1}).equal(at::arange(len, at::kFloat) + 1000.0 * prev));
}

TEST_F(CommTest, SendRecvOfWrongSizeThrows) {
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  const int partner = r ^ 1;  // an odd world's last rank has none and only joins the barrier
  if (partner < n) {
    at::Tensor in = at::zeros({12});
    EXPECT_TRUE(throws_error([&] { comm->sendrecv(at::ones({10}), partner, in, partner, 8); }, "has 10 elements"));
  }
  comm->barrier();
}

TEST_F(CommTest, VerifyTurnsCrossRankMismatchIntoErrors) {
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  comm->set_verify(true);
  at::Tensor uneven = at::zeros({r + 1});  // a different length on every rank
  EXPECT_TRUE(throws_error([&] { comm->allreduce(uneven); }, "disagree on the element count"));
  at::Tensor mixed = at::zeros({4}, r == 0 ? at::kFloat : at::kDouble);
  EXPECT_TRUE(throws_error([&] { comm->broadcast(mixed, 0); }, "disagree on the dtype"));
  EXPECT_TRUE(throws_error([&] { comm->broadcast(at::zeros({4}), r); }, "disagree on the op/root"));
  // Nothing left half-done: the communicator still works.
  at::Tensor ok = at::ones({4});
  comm->allreduce(ok);
  EXPECT_TRUE(same(ok, std::vector<double>(4, n)));
}

// ---- a measured figure (printed by rank 0, checked for correctness, not timed as a pass/fail)
// ----

void time_allreduce(MpiComm& comm, at::ScalarType st) {
  const int n = comm.size(), iters = 20, warmup = 2;
  at::Tensor t = at::ones({1 << 20}, at::TensorOptions().dtype(st));
  for (int i = 0; i < warmup; ++i) comm.allreduce(t);
  comm.barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) comm.allreduce(t);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  at::Tensor slowest = at::full({1}, ms, at::kDouble);
  comm.allreduce(slowest, ReduceOp::kMax);
  // Every element is n^(warmup + iters): powers of n (2 or 4) are exact in float32 and bfloat16.
  const double want = std::pow(double(n), warmup + iters);
  EXPECT_EQ(t.min().item<double>(), want);
  EXPECT_EQ(t.max().item<double>(), want);
  if (comm.rank() == 0)
    std::printf("[   perf   ] allreduce 1M %s on %d ranks: %.3f ms per call\n", c10::toString(st),
                n, slowest.item<double>() / iters);
}

TEST_F(CommTest, AllreduceOneMillionFloatsTimed) {
  time_allreduce(*comm, at::kFloat);
  time_allreduce(*comm, at::kBFloat16);
}

}  // namespace
}  // namespace medgpt::parallel
