// gtest main for tests that run under mpirun: every rank runs every test (the tests call
// collectives, so all ranks must walk the same list in the same order). Rank 0 prints the usual
// report; other ranks print only their failures, prefixed with their rank. The exit code is agreed
// across ranks (MPI_Allreduce MAX), so mpirun and ctest see a failure on any rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "parallel/mpi_env.hpp"

namespace {

class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}

  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                 r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed())
      std::fprintf(stderr, "[rank %d] [  FAILED  ] %s.%s\n", rank_, info.test_suite_name(),
                   info.name());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  medgpt::parallel::MpiEnv::instance(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = medgpt::parallel::world_rank();

  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(rank));
  }

  const int mine = RUN_ALL_TESTS();
  int any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any != 0 && mine == 0)
    std::fprintf(stderr, "[rank 0] tests passed here but failed on another rank (see above)\n");
  std::fflush(stdout);
  std::fflush(stderr);
  medgpt::parallel::MpiEnv::finalize();
  return any;
}
