// The 1F1B pipeline schedule (PipeDream-flush, Megatron's forward_backward_pipelining_without_
// interleaving) as a list of actions per stage: warm-up forwards, then one forward and one backward
// in turn, then the remaining backwards. Stage s keeps at most min(p - s, m) micro-batches'
// activations alive, instead of all m as with "all forwards, then all backwards".
// Pure: the order is testable without ranks; parallel/pipeline.hpp runs it.
#pragma once

#include <string>
#include <vector>

namespace medgpt::parallel {

struct PipeAction {
  enum Kind { kForward, kBackward } kind;
  int micro;  // micro-batch index, 0..m-1
  bool operator==(const PipeAction& o) const { return kind == o.kind && micro == o.micro; }
};

// The actions of `stage` (0..stages-1) over `micro` micro-batches, in execution order.
std::vector<PipeAction> one_f_one_b(int stages, int stage, int micro);

// Warm-up forwards of `stage` before its first backward: min(stages - stage - 1, micro).
int warmup_forwards(int stages, int stage, int micro);

// The ideal bubble fraction of 1F1B with equal forward and backward times: (p - 1) / (m + p - 1).
double ideal_bubble(int stages, int micro);

// "F0 F1 B0 F2 B1 B2" (tests, logs).
std::string to_string(const std::vector<PipeAction>& actions);

// Each stage's layer count: `split` ("7,9,8", summing to `layers`) or an even split, the first
// stages taking one more when it does not divide. util::Error names --parallel.pp or
// --parallel.pp_layers with the numbers.
std::vector<int> stage_layers(int layers, int stages, const std::string& split = "");

}  // namespace medgpt::parallel
