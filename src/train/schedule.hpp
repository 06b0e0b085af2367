// Learning-rate schedules as transformers' get_scheduler (LambdaLR): update k (0 for the first)
// uses base_lr * f(k); with warmup the first update uses lr 0. W warmup steps, T total steps.
#pragma once

#include <cstdint>
#include <string>

namespace medgpt::train {

struct Schedule {
  std::string type = "linear";  // constant | constant_with_warmup | linear | cosine | cosine_with_min_lr
  std::int64_t warmup = 0;      // W
  std::int64_t total = 1;       // T
  double min_lr_rate = 0.0;     // cosine_with_min_lr: the floor as a fraction of base_lr

  // f(k).
  double factor(std::int64_t k) const;
};

// util::Error naming `where` for an unknown type.
void check_schedule_type(const std::string& type, const std::string& where);
// Warmup steps from --train.warmup_steps (> 0 wins) or --train.warmup_ratio: ceil(ratio * total).
std::int64_t warmup_steps(std::int64_t steps, double ratio, std::int64_t total);

}  // namespace medgpt::train
