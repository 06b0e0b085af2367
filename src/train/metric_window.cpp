#include "train/metric_window.hpp"

#include <algorithm>

#include "parallel/agreement.hpp"

namespace medgpt::train {

void MetricWindow::add(const std::vector<Metric>& values) {
  for (const Metric& m : values) {
    const auto it = std::find(names_.begin(), names_.end(), m.name);
    const std::size_t i = static_cast<std::size_t>(it - names_.begin());
    if (it == names_.end()) names_.push_back(m.name), sums_.push_back(0), weights_.push_back(0);
    sums_[i] += m.value * m.weight;
    weights_[i] += m.weight;
  }
}

void MetricWindow::report(parallel::Comm& dp, nlohmann::ordered_json& row, const std::string& prefix) {
  // The union of the ranks' names ('\n'-joined per rank), so every rank reduces the same vector.
  std::string mine;
  for (const std::string& n : names_) mine += n + "\n";
  std::vector<std::string> names;
  for (const std::string& theirs : parallel::allgather_strings(dp, mine))
    for (std::size_t b = 0, e; (e = theirs.find('\n', b)) != std::string::npos; b = e + 1) {
      const std::string n = theirs.substr(b, e - b);
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
  if (!names.empty()) {
    const auto k = static_cast<std::int64_t>(names.size());
    at::Tensor t = at::zeros({2 * k}, at::kDouble);
    for (std::size_t i = 0; i < names_.size(); ++i) {
      const auto j = static_cast<std::int64_t>(std::find(names.begin(), names.end(), names_[i]) - names.begin());
      t[j] = sums_[i];
      t[k + j] = weights_[i];
    }
    dp.allreduce(t, parallel::ReduceOp::kSum);
    for (std::int64_t j = 0; j < k; ++j) {
      const double weight = t[k + j].item<double>();
      if (weight > 0) row[prefix + names[static_cast<std::size_t>(j)]] = t[j].item<double>() / weight;
    }
  }
  names_.clear(), sums_.clear(), weights_.clear();
}

}  // namespace medgpt::train
