// An objective's metrics over a window of batches (a logging window, or an evaluation pass): sums
// and weights per name, reported as weighted means over the batches of every dp rank.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parallel/comm.hpp"
#include "train/objective.hpp"

namespace medgpt::train {

class MetricWindow {
 public:
  void add(const std::vector<Metric>& values);
  // Collective over dp, reached by every rank whatever it recorded: a rank with no batches in the
  // window (fewer validation groups than ranks) still joins. Writes prefix + name = the weighted
  // mean for every name some rank recorded with a positive weight (none: not logged, as TRL), in
  // the order the ranks first saw them, then starts a new window.
  void report(parallel::Comm& dp, nlohmann::ordered_json& row, const std::string& prefix);

 private:
  std::vector<std::string> names_;
  std::vector<double> sums_, weights_;
};

}  // namespace medgpt::train
