#include "parallel/pipeline_schedule.hpp"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "util/error.hpp"

namespace medgpt::parallel {

int warmup_forwards(int stages, int stage, int micro) { return std::min(stages - stage - 1, micro); }

std::vector<PipeAction> one_f_one_b(int stages, int stage, int micro) {
  const int warmup = warmup_forwards(stages, stage, micro);
  std::vector<PipeAction> out;
  int f = 0, b = 0;
  while (f < warmup) out.push_back({PipeAction::kForward, f++});
  while (f < micro) {  // steady state: the forward of f, then the backward of the oldest in flight
    out.push_back({PipeAction::kForward, f++});
    out.push_back({PipeAction::kBackward, b++});
  }
  while (b < micro) out.push_back({PipeAction::kBackward, b++});  // cool-down
  return out;
}

double ideal_bubble(int stages, int micro) { return static_cast<double>(stages - 1) / static_cast<double>(micro + stages - 1); }

std::string to_string(const std::vector<PipeAction>& actions) {
  std::ostringstream s;
  for (std::size_t i = 0; i < actions.size(); ++i)
    s << (i ? " " : "") << (actions[i].kind == PipeAction::kForward ? 'F' : 'B') << actions[i].micro;
  return s.str();
}

std::vector<int> stage_layers(int layers, int stages, const std::string& split) {
  if (stages > layers)
    util::fail("--parallel.pp", std::to_string(stages) + " stages for a model of " + std::to_string(layers) + " layers",
               "use at most " + std::to_string(layers) + " stages (each holds at least one layer)");
  std::vector<int> out;
  if (split.empty()) {
    for (int s = 0; s < stages; ++s) out.push_back(layers / stages + (s < layers % stages ? 1 : 0));
    return out;
  }
  std::stringstream in(split);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    int n = 0;
    try {
      n = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || n < 1)
      util::fail("--parallel.pp_layers", "\"" + item + "\" in \"" + split + "\" is not a layer count >= 1", "give one count per stage, e.g. 7,9");
    out.push_back(n);
  }
  const int total = std::accumulate(out.begin(), out.end(), 0);
  if (static_cast<int>(out.size()) != stages || total != layers)
    util::fail("--parallel.pp_layers", "\"" + split + "\" gives " + std::to_string(out.size()) + " stages and " + std::to_string(total) +
                                           " layers; the model has " + std::to_string(layers) + " layers over --parallel.pp " + std::to_string(stages),
               "give " + std::to_string(stages) + " counts summing to " + std::to_string(layers));
  return out;
}

}  // namespace medgpt::parallel
