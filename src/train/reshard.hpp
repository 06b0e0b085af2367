// `medgpt checkpoint reshard`: a training run's checkpoint rewritten as another (tp, pp) layout's
// files, so that each rank of that layout opens only its own model and optimizer shard. Values,
// step, data cursor and side files stay as they are; any dp size and ZeRO stage resume from the
// result (each optimizer file holds its tp shard's whole moments). Resuming resharded and resuming
// the original in the target layout load the same numbers.
#pragma once

#include <string>

namespace medgpt::train {

struct ReshardOptions {
  int tp = 1, pp = 1;
  std::string pp_layers;  // "7,9,..." or "" for an even split (--parallel.pp_layers)
};

// Writes `out` (a new folder) from the committed checkpoint `in`; util::Error names the file and
// what to do when `in` is damaged, not a training run's checkpoint, or written before optimizer
// state by name, and when the model cannot be split that way.
void reshard_checkpoint(const std::string& in, const std::string& out, const ReshardOptions& o);

}  // namespace medgpt::train
