#include "train/objective.hpp"

#include "util/error.hpp"

namespace medgpt::train {

at::Tensor Objective::stage_forward(const data::Batch&, const at::Tensor&, double, bool) {
  util::fail("--parallel.pp", "this stage's loss is not split over pipeline stages", "use --parallel.pp 1");
}

at::Tensor Objective::activation_like(const data::Batch&) const {
  util::fail("--parallel.pp", "this stage's loss is not split over pipeline stages", "use --parallel.pp 1");
}

}  // namespace medgpt::train
