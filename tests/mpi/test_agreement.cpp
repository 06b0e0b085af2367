// Collective control-flow helpers: strings across ranks, facts that rank 0 decides for all (ranks
// whose views of a filesystem differ still take one path), errors raised together, and the key that
// orders the first bad record of each rank by input position for any rank count.
#include <gtest/gtest.h>

#include "parallel/agreement.hpp"
#include "parallel/grid.hpp"
#include "util/error.hpp"

using namespace medgpt;

namespace {

TEST(Agreement, StringsAcrossRanks) {
  parallel::Grid grid(1, 1);
  parallel::Comm& w = grid.world();
  const int r = w.rank();
  // Different lengths, one empty, non-ASCII bytes.
  const std::string mine = r == 1 ? "" : "rank " + std::to_string(r) + std::string(static_cast<std::size_t>(r) * 3, 'x') + " 高血压";
  const std::vector<std::string> all = parallel::allgather_strings(w, mine);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(w.size()));
  for (int i = 0; i < w.size(); ++i)
    EXPECT_EQ(all[static_cast<std::size_t>(i)], i == 1 ? "" : "rank " + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 3, 'x') + " 高血压");
  EXPECT_EQ(parallel::broadcast_string(w, mine, 0), all[0]);
  EXPECT_EQ(parallel::broadcast_string(w, mine, 1), "");
}

TEST(Agreement, RootDecidesForEveryRank) {
  parallel::Grid grid(1, 1);
  parallel::Comm& w = grid.world();
  // Each rank would answer differently (as ranks with stale NFS attributes could): all get rank 0's.
  EXPECT_TRUE(parallel::root_decides(w, [&] { return w.rank() == 0; }));
  EXPECT_FALSE(parallel::root_decides(w, [&] { return w.rank() != 0; }));
  EXPECT_EQ(parallel::root_decides(w, [&] { return std::string("step-") + std::to_string(w.rank() + 7); }), "step-7");
  int calls = 0;
  parallel::root_decides(w, [&] { return ++calls > 0; });
  EXPECT_EQ(calls, w.rank() == 0 ? 1 : 0);  // only rank 0 looks
  // An error while deciding reaches every rank, with rank 0's message.
  try {
    parallel::root_decides(w, []() -> bool { util::fail("out/checkpoints/step-00000004/meta.json", "unreadable", "fix it"); });
    ADD_FAILURE() << "no error";
  } catch (const util::CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("step-00000004/meta.json: unreadable"), std::string::npos) << e.what();
  }
}

TEST(Agreement, InputOrderKeyForAnyRankCount) {
  // Ranks read consecutive shares: an error of rank 300 in file 0 comes before rank 301's there and
  // before any in file 1, also beyond 256 ranks.
  for (int ranks : {4, 256, 1000, 100000}) {
    SCOPED_TRACE(ranks);
    const int a = std::min(300, ranks - 2);
    EXPECT_LT(parallel::input_order_key(0, a, ranks), parallel::input_order_key(0, a + 1, ranks));
    EXPECT_LT(parallel::input_order_key(0, ranks - 1, ranks), parallel::input_order_key(1, 0, ranks));
    EXPECT_LT(parallel::input_order_key(70000, ranks - 1, ranks), parallel::kNoError);
  }
}

}  // namespace
