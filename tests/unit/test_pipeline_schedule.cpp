// The 1F1B schedule: the textbook order (Narayanan et al. 2021, Fig. 4; Megatron's
// forward_backward_pipelining_without_interleaving), checked literally for p = 4, m = 8, and by a
// timed simulation of the whole pipeline for several (p, m): it finishes (no stage waits forever),
// in (m + p - 1)(t_f + t_b), the bubble of (p - 1) / (m + p - 1), with at most min(p - s, m)
// micro-batches in flight on stage s. And the layer split with its bad-input lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "parallel/pipeline_schedule.hpp"
#include "util/error.hpp"

using namespace medgpt;
using parallel::PipeAction;

TEST(PipelineSchedule, TextbookOrderForFourStagesAndEightMicroBatches) {
  EXPECT_EQ(parallel::to_string(parallel::one_f_one_b(4, 0, 8)), "F0 F1 F2 F3 B0 F4 B1 F5 B2 F6 B3 F7 B4 B5 B6 B7");
  EXPECT_EQ(parallel::to_string(parallel::one_f_one_b(4, 1, 8)), "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 F6 B4 F7 B5 B6 B7");
  EXPECT_EQ(parallel::to_string(parallel::one_f_one_b(4, 2, 8)), "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 F6 B5 F7 B6 B7");
  EXPECT_EQ(parallel::to_string(parallel::one_f_one_b(4, 3, 8)), "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 F6 B6 F7 B7");
  // Fewer micro-batches than stages: the warm-up is cut to m.
  EXPECT_EQ(parallel::to_string(parallel::one_f_one_b(4, 0, 2)), "F0 F1 B0 B1");
  EXPECT_EQ(parallel::to_string(parallel::one_f_one_b(1, 0, 3)), "F0 B0 F1 B1 F2 B2");
}

namespace {

// Runs every stage's action list with forward time tf and backward time tb: a forward needs the
// previous stage's forward of that micro-batch, a backward the next stage's backward (the last
// stage: its own forward). Returns the finishing time, or -1 if some stage waits forever.
struct Simulation {
  double makespan = -1;
  std::vector<int> peak_in_flight;  // per stage
};

Simulation simulate(int p, int m, double tf, double tb) {
  std::vector<std::vector<PipeAction>> plan;
  for (int s = 0; s < p; ++s) plan.push_back(parallel::one_f_one_b(p, s, m));
  std::vector<std::size_t> next(p, 0);
  std::vector<double> free_at(p, 0);
  std::map<std::pair<int, int>, double> f_end, b_end;  // (stage, micro) -> end time
  Simulation out;
  out.peak_in_flight.assign(p, 0);
  std::vector<int> in_flight(p, 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int s = 0; s < p; ++s) {
      if (next[s] == plan[s].size()) continue;
      const PipeAction a = plan[s][next[s]];
      double ready = 0;
      if (a.kind == PipeAction::kForward) {
        if (s > 0) {
          auto it = f_end.find({s - 1, a.micro});
          if (it == f_end.end()) continue;
          ready = it->second;
        }
      } else {
        auto it = s == p - 1 ? f_end.find({s, a.micro}) : b_end.find({s + 1, a.micro});
        if (it == (s == p - 1 ? f_end.end() : b_end.end())) continue;
        ready = it->second;
      }
      const double end = std::max(ready, free_at[s]) + (a.kind == PipeAction::kForward ? tf : tb);
      free_at[s] = end;
      (a.kind == PipeAction::kForward ? f_end : b_end)[{s, a.micro}] = end;
      in_flight[s] += a.kind == PipeAction::kForward ? 1 : -1;
      out.peak_in_flight[s] = std::max(out.peak_in_flight[s], in_flight[s]);
      ++next[s];
      progress = true;
    }
  }
  for (int s = 0; s < p; ++s)
    if (next[s] != plan[s].size()) return out;
  out.makespan = *std::max_element(free_at.begin(), free_at.end());
  return out;
}

}  // namespace

TEST(PipelineSchedule, SimulatedPipelineFinishesWithTheIdealBubble) {
  const std::pair<int, int> cases[] = {{1, 4}, {2, 1}, {2, 4}, {3, 2}, {3, 7}, {4, 4}, {4, 8}, {4, 3}, {8, 16}, {8, 5}};
  for (const auto& [p, m] : cases) {
    for (const double tb : {1.0, 2.0}) {
      const Simulation sim = simulate(p, m, 1.0, tb);
      ASSERT_GT(sim.makespan, 0) << "p=" << p << " m=" << m << ": a stage waits forever";
      EXPECT_DOUBLE_EQ(sim.makespan, (m + p - 1) * (1.0 + tb)) << "p=" << p << " m=" << m << " tb=" << tb;
      // Idle share of the p stages: what the bubble formula predicts.
      const double busy = m * (1.0 + tb), bubble = 1.0 - busy / sim.makespan;
      EXPECT_NEAR(bubble, parallel::ideal_bubble(p, m), 1e-12) << "p=" << p << " m=" << m;
      for (int s = 0; s < p; ++s) EXPECT_EQ(sim.peak_in_flight[s], std::min(p - s, m)) << "p=" << p << " m=" << m << " stage " << s;
    }
  }
}

TEST(PipelineSchedule, LayerSplit) {
  EXPECT_EQ(parallel::stage_layers(28, 4), (std::vector<int>{7, 7, 7, 7}));
  EXPECT_EQ(parallel::stage_layers(30, 4), (std::vector<int>{8, 8, 7, 7}));
  EXPECT_EQ(parallel::stage_layers(4, 1), (std::vector<int>{4}));
  EXPECT_EQ(parallel::stage_layers(16, 2, "7,9"), (std::vector<int>{7, 9}));
  auto error = [](int layers, int stages, const std::string& split) -> std::string {
    try {
      parallel::stage_layers(layers, stages, split);
    } catch (const util::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error(4, 5, ""), "--parallel.pp: 5 stages for a model of 4 layers; use at most 4 stages (each holds at least one layer)");
  EXPECT_EQ(error(16, 2, "7,8"),
            "--parallel.pp_layers: \"7,8\" gives 2 stages and 15 layers; the model has 16 layers over --parallel.pp 2; give 2 counts summing to 16");
  EXPECT_EQ(error(16, 3, "8,8"),
            "--parallel.pp_layers: \"8,8\" gives 2 stages and 16 layers; the model has 16 layers over --parallel.pp 3; give 3 counts summing to 16");
  EXPECT_EQ(error(16, 2, "8,x"), "--parallel.pp_layers: \"x\" in \"8,x\" is not a layer count >= 1; give one count per stage, e.g. 7,9");
  EXPECT_EQ(error(16, 2, "16,0"), "--parallel.pp_layers: \"0\" in \"16,0\" is not a layer count >= 1; give one count per stage, e.g. 7,9");
}
