// parallel::Grid under mpirun: for each (tp, pp) split that divides the world, every rank checks its
// coordinates against the rank-order rule (tp fastest, then pp, then dp) written out here
// independently, the membership of its three groups (allgather of world ranks), and the sum of
// world ranks over each group (allreduce) against its closed form.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "parallel/grid.hpp"
#include "parallel/mpi_env.hpp"
#include "util/error.hpp"

namespace medgpt::parallel {
namespace {

class GridSplit : public ::testing::TestWithParam<std::tuple<int, int>> {};

std::vector<int64_t> gathered_ranks(Comm& comm, int world_rank) {
  at::Tensor all = comm.allgather(at::full({1}, world_rank, at::kLong));
  return std::vector<int64_t>(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel());
}

int64_t group_sum(Comm& comm, int world_rank) {
  at::Tensor t = at::full({1}, world_rank, at::kLong);
  comm.allreduce(t, ReduceOp::kSum);
  return t.item<int64_t>();
}

TEST_P(GridSplit, CoordinatesGroupsAndGroupSums) {
  const auto [tp, pp] = GetParam();
  const int world = world_size(), rank = world_rank();
  if (world % (tp * pp) != 0) GTEST_SKIP() << "tp*pp=" << tp * pp << " does not divide " << world;
  const int dp = world / (tp * pp);

  Grid grid(tp, pp);
  // Coordinates by the rule, independently of grid_coords().
  const int want_tp = rank % tp, want_pp = (rank / tp) % pp, want_dp = rank / (tp * pp);

  // Every collective first (all ranks), assertions after.
  auto tp_members = gathered_ranks(grid.tp(), rank);
  auto pp_members = gathered_ranks(grid.pp(), rank);
  auto dp_members = gathered_ranks(grid.dp(), rank);
  auto world_members = gathered_ranks(grid.world(), rank);
  const int64_t tp_sum = group_sum(grid.tp(), rank);
  const int64_t pp_sum = group_sum(grid.pp(), rank);
  const int64_t dp_sum = group_sum(grid.dp(), rank);
  const int64_t world_sum = group_sum(grid.world(), rank);

  EXPECT_EQ(grid.rank(), rank);
  EXPECT_EQ(grid.world_size(), world);
  EXPECT_EQ(grid.tp_size(), tp);
  EXPECT_EQ(grid.pp_size(), pp);
  EXPECT_EQ(grid.dp_size(), dp);
  EXPECT_EQ(grid.tp_rank(), want_tp);
  EXPECT_EQ(grid.pp_rank(), want_pp);
  EXPECT_EQ(grid.dp_rank(), want_dp);
  EXPECT_EQ(grid.first_stage(), want_pp == 0);
  EXPECT_EQ(grid.last_stage(), want_pp == pp - 1);

  // The communicators: size and this rank's place in each.
  EXPECT_EQ(grid.tp().size(), tp);
  EXPECT_EQ(grid.pp().size(), pp);
  EXPECT_EQ(grid.dp().size(), dp);
  EXPECT_EQ(grid.world().size(), world);
  EXPECT_EQ(grid.tp().rank(), want_tp);
  EXPECT_EQ(grid.pp().rank(), want_pp);
  EXPECT_EQ(grid.dp().rank(), want_dp);
  EXPECT_EQ(grid.world().rank(), rank);

  // Members, in group-rank order.
  std::vector<int64_t> want_tp_members, want_pp_members, want_dp_members, want_world;
  for (int i = 0; i < tp; ++i) want_tp_members.push_back(want_dp * tp * pp + want_pp * tp + i);
  for (int i = 0; i < pp; ++i) want_pp_members.push_back(want_dp * tp * pp + i * tp + want_tp);
  for (int i = 0; i < dp; ++i) want_dp_members.push_back(i * tp * pp + want_pp * tp + want_tp);
  for (int i = 0; i < world; ++i) want_world.push_back(i);
  EXPECT_EQ(tp_members, want_tp_members);
  EXPECT_EQ(pp_members, want_pp_members);
  EXPECT_EQ(dp_members, want_dp_members);
  EXPECT_EQ(world_members, want_world);

  // Sums of world ranks over each group, in closed form.
  const int64_t base = int64_t(want_dp) * tp * pp;
  EXPECT_EQ(tp_sum, tp * (base + int64_t(want_pp) * tp) + int64_t(tp) * (tp - 1) / 2);
  EXPECT_EQ(pp_sum, pp * (base + want_tp) + int64_t(tp) * pp * (pp - 1) / 2);
  EXPECT_EQ(dp_sum, dp * (int64_t(want_pp) * tp + want_tp) + int64_t(tp) * pp * dp * (dp - 1) / 2);
  EXPECT_EQ(world_sum, int64_t(world) * (world - 1) / 2);
}

std::string split_name(const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
  return "tp" + std::to_string(std::get<0>(info.param)) + "_pp" +
         std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Splits, GridSplit,
                         ::testing::Values(std::make_tuple(1, 1), std::make_tuple(2, 1),
                                           std::make_tuple(1, 2), std::make_tuple(2, 2),
                                           std::make_tuple(4, 1), std::make_tuple(1, 4)),
                         split_name);

TEST(Grid, GroupsAreIndependentCommunicators) {
  // Collectives on different groups interleave without crosstalk: a tp broadcast from the tp root,
  // then a dp allreduce of the received values.
  const int world = world_size();
  if (world % 2 != 0) GTEST_SKIP() << "needs an even world";
  Grid grid(2, 1);
  at::Tensor t = at::full({8}, grid.rank(), at::kFloat);
  grid.tp().broadcast(t, 0);  // every tp pair now holds its first member's world rank
  grid.dp().allreduce(t, ReduceOp::kSum);
  // tp roots are world ranks 0, 2, 4, ...: their sum over the dp group.
  const double want = 2.0 * grid.dp_size() * (grid.dp_size() - 1) / 2;
  EXPECT_EQ(t.min().item<double>(), want);
  EXPECT_EQ(t.max().item<double>(), want);
}

TEST(Grid, NonDividingSplitThrowsOnEveryRank) {
  const int world = world_size();
  const int tp = world + 1;  // never divides
  try {
    Grid grid(tp, 1);
    ADD_FAILURE() << "Grid(" << tp << ", 1) on " << world << " ranks did not throw";
  } catch (const util::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("does not divide the " + std::to_string(world) + " ranks"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("launch a multiple of"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
  EXPECT_THROW(Grid(0, 1), util::Error);
  // Still usable afterwards: nothing was left half-split.
  Grid ok(1, 1);
  EXPECT_EQ(ok.dp_size(), world);
}

}  // namespace
}  // namespace medgpt::parallel
