// Wall time for the timings medgpt reports (phases of a step, probes, benchmarks).
#pragma once

#include <chrono>

namespace medgpt::util {

using Clock = std::chrono::steady_clock;

// Seconds from t0 to now.
inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace medgpt::util
