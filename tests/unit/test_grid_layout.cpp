// The grid layout math, one process: rank <-> (dp, pp, tp) coordinates with tp fastest, group
// membership, and the errors for shapes that do not fit the world.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "parallel/grid.hpp"
#include "util/error.hpp"

namespace medgpt::parallel {
namespace {

TEST(GridLayout, DerivesDataParallelSize) {
  GridShape s = make_grid_shape(16, 2, 4);
  EXPECT_EQ(s.tp, 2);
  EXPECT_EQ(s.pp, 4);
  EXPECT_EQ(s.dp, 2);
  EXPECT_EQ(s.world(), 16);
  EXPECT_EQ(make_grid_shape(1, 1, 1).dp, 1);
  EXPECT_EQ(make_grid_shape(8, 8, 1).dp, 1);
}

TEST(GridLayout, RejectsShapesThatDoNotFit) {
  try {
    make_grid_shape(6, 4, 1);
    ADD_FAILURE() << "no error";
  } catch (const util::Error& e) {
    EXPECT_STREQ(e.what(),
                 "--parallel.tp/--parallel.pp: tp 4 x pp 1 = 4 does not divide the 6 ranks of this job; "
                 "launch a multiple of 4 ranks, or pick tp and pp whose product divides 6");
  }
  EXPECT_THROW(make_grid_shape(4, 0, 1), util::Error);
  EXPECT_THROW(make_grid_shape(4, 1, -2), util::Error);
  EXPECT_THROW(make_grid_shape(4, 3, 1), util::Error);
  EXPECT_THROW(make_grid_shape(2, 2, 2), util::Error);  // 4 > world
}

TEST(GridLayout, TpFastestThenPpThenDp) {
  // world 8 = dp 2 x pp 2 x tp 2, written out by hand.
  GridShape s = make_grid_shape(8, 2, 2);
  const int want[8][3] = {{0, 0, 0}, {0, 0, 1}, {0, 1, 0}, {0, 1, 1},  // {dp, pp, tp}
                          {1, 0, 0}, {1, 0, 1}, {1, 1, 0}, {1, 1, 1}};
  for (int r = 0; r < 8; ++r) {
    GridCoords c = grid_coords(s, r);
    EXPECT_EQ(c.dp, want[r][0]) << "rank " << r;
    EXPECT_EQ(c.pp, want[r][1]) << "rank " << r;
    EXPECT_EQ(c.tp, want[r][2]) << "rank " << r;
  }
}

TEST(GridLayout, RoundTripsEveryRankOfManyShapes) {
  for (int world : {1, 2, 4, 6, 8, 12, 24, 64})
    for (int tp = 1; tp <= world; ++tp)
      for (int pp = 1; pp <= world; ++pp) {
        if (world % (tp * pp) != 0) continue;
        GridShape s = make_grid_shape(world, tp, pp);
        std::set<std::vector<int>> seen;
        for (int r = 0; r < world; ++r) {
          GridCoords c = grid_coords(s, r);
          ASSERT_EQ(grid_rank(s, c), r) << world << "/" << tp << "/" << pp;
          ASSERT_EQ(c.tp, r % tp);
          ASSERT_EQ(c.pp, (r / tp) % pp);
          ASSERT_EQ(c.dp, r / (tp * pp));
          seen.insert({c.dp, c.pp, c.tp});
        }
        EXPECT_EQ(static_cast<int>(seen.size()), world);  // a bijection
      }
}

TEST(GridLayout, GroupsOfOneRank) {
  GridShape s = make_grid_shape(8, 2, 2);  // dp 2
  // Rank 5 = (dp 1, pp 0, tp 1).
  EXPECT_EQ(tp_group(s, 5), (std::vector<int>{4, 5}));
  EXPECT_EQ(pp_group(s, 5), (std::vector<int>{5, 7}));
  EXPECT_EQ(dp_group(s, 5), (std::vector<int>{1, 5}));
  // A tp group is consecutive ranks (one node).
  GridShape wide = make_grid_shape(16, 4, 2);
  EXPECT_EQ(tp_group(wide, 9), (std::vector<int>{8, 9, 10, 11}));
  EXPECT_EQ(pp_group(wide, 9), (std::vector<int>{9, 13}));
  EXPECT_EQ(dp_group(wide, 9), (std::vector<int>{1, 9}));
}

TEST(GridLayout, GroupsPartitionTheWorld) {
  GridShape s = make_grid_shape(24, 2, 3);  // dp 4
  using Fn = std::vector<int> (*)(const GridShape&, int);
  for (Fn fn : {Fn(&tp_group), Fn(&pp_group), Fn(&dp_group)}) {
    std::vector<int> owner(24, -1);
    for (int r = 0; r < 24; ++r) {
      std::vector<int> g = fn(s, r);
      // Every member lists the same group, and r is in it at its own coordinate.
      for (int m : g) EXPECT_EQ(fn(s, m), g);
      int count = 0;
      for (int m : g) count += (m == r);
      EXPECT_EQ(count, 1);
      owner[r] = g.front();
    }
    std::set<int> groups(owner.begin(), owner.end());
    EXPECT_EQ(groups.size() * fn(s, 0).size(), 24u);
  }
}

TEST(GridLayout, OutOfRangeIsAnError) {
  GridShape s = make_grid_shape(4, 2, 1);
  EXPECT_THROW(grid_coords(s, 4), util::Error);
  EXPECT_THROW(grid_coords(s, -1), util::Error);
  EXPECT_THROW(grid_rank(s, GridCoords{2, 0, 0}), util::Error);
  EXPECT_THROW(grid_rank(s, GridCoords{0, 0, 2}), util::Error);
}

}  // namespace
}  // namespace medgpt::parallel
