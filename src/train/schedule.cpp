#include "train/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "util/error.hpp"

namespace medgpt::train {

namespace {
const char* const kTypes[] = {"constant", "constant_with_warmup", "linear", "cosine", "cosine_with_min_lr"};
}

void check_schedule_type(const std::string& type, const std::string& where) {
  for (const char* t : kTypes)
    if (type == t) return;
  util::fail(where, "unknown schedule \"" + type + "\"", "use constant, constant_with_warmup, linear, cosine or cosine_with_min_lr");
}

std::int64_t warmup_steps(std::int64_t steps, double ratio, std::int64_t total) {
  if (steps > 0) return steps;
  return static_cast<std::int64_t>(std::ceil(ratio * static_cast<double>(total)));
}

double Schedule::factor(std::int64_t k) const {
  const double W = static_cast<double>(warmup), T = static_cast<double>(total), K = static_cast<double>(k);
  if (type == "constant") return 1.0;
  if (k < warmup) return K / std::max(1.0, W);
  if (type == "constant_with_warmup") return 1.0;
  if (type == "linear") return std::max(0.0, (T - K) / std::max(1.0, T - W));
  const double p = (K - W) / std::max(1.0, T - W);
  const double c = 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * p));  // num_cycles = 0.5
  if (type == "cosine") return std::max(0.0, c);
  return std::max(0.0, c * (1.0 - min_lr_rate) + min_lr_rate);  // cosine_with_min_lr
}

}  // namespace medgpt::train
