// MetricWindow::report is reached by every dp rank whatever it recorded: a rank with no batches in
// the window (a preference stage's validation split with fewer groups than ranks) must not skip the
// reduction, or the others wait for it forever. Names recorded on some ranks only are reported with
// the weighted mean over the ranks that have them.
#include <gtest/gtest.h>

#include "parallel/grid.hpp"
#include "train/metric_window.hpp"

using namespace medgpt;

namespace {

TEST(MetricWindow, RanksWithoutMetricsStillReduce) {
  parallel::Grid grid(1, 1);
  parallel::Comm& dp = grid.dp();
  const int n = dp.size(), r = dp.rank();
  train::MetricWindow w;
  // Rank 0 records "acc" twice; the last rank records "margin" (and "acc" when it is not rank 0);
  // the ranks between record nothing.
  if (r == 0) w.add({{"acc", 0.5, 2.0}, {"acc", 1.0, 1.0}});
  if (r == n - 1 && n > 1) w.add({{"margin", 3.0, 4.0}, {"acc", 0.25, 1.0}});
  nlohmann::ordered_json row = nlohmann::ordered_json::object();
  w.report(dp, row, "eval_");
  // acc: (0.5*2 + 1*1 + 0.25*1) / (2 + 1 + 1); margin: 3 (one rank, weight 4).
  EXPECT_DOUBLE_EQ(row.at("eval_acc").get<double>(), 2.25 / 4.0);
  EXPECT_DOUBLE_EQ(row.at("eval_margin").get<double>(), 3.0);
  EXPECT_EQ(row.begin().key(), "eval_acc");  // rank 0's names first
  // A window in which no rank recorded anything writes nothing, and the window starts empty again.
  nlohmann::ordered_json empty = nlohmann::ordered_json::object();
  w.report(dp, empty, "");
  EXPECT_TRUE(empty.empty());
}

}  // namespace
