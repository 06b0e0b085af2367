// The options `medgpt plan` and `medgpt memory` share, declared and read once: the model and the
// shape of the planned run (tokens per row, micro-batch, precision, what is trained), and --json.
#pragma once

#include "app/bounded_value.hpp"
#include "train/plan.hpp"

namespace medgpt::app {

void add_run_shape_options(po::options_description& d);
// PlanInputs with config, seq_len, micro_batch, bf16, trainable and lora_r set; util::Error
// naming the option for a bad precision.
train::PlanInputs run_shape(const po::variables_map& vm);

inline double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

}  // namespace medgpt::app
