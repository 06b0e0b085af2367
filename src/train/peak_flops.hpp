// The FLOP/s ceiling MFU is reported against: the best of several 2048^3 matmuls in the precision in
// use, run on every rank at once (so ranks sharing cores share the ceiling) and summed over the
// world. Measured once per machine shape and cached in $XDG_CACHE_HOME/medgpt (or ~/.cache/medgpt).
#pragma once

#include <ATen/ATen.h>

#include "parallel/comm.hpp"

namespace medgpt::train {

// FLOP/s of one rank's matmul probe (no caching).
double matmul_probe(at::ScalarType dtype, std::int64_t n = 2048);
// The whole job's ceiling (collective over `world`).
double peak_flops(at::ScalarType dtype, parallel::Comm& world);

}  // namespace medgpt::train
