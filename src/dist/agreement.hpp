// Small collective helpers for control flow: integers across ranks, and errors that every rank
// raises together (so a bad record found by one rank ends the job cleanly on all of them).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "dist/comm.hpp"

namespace medgpt::dist {

constexpr std::int64_t kNoError = std::numeric_limits<std::int64_t>::max();

std::int64_t allreduce_int(Comm& c, std::int64_t v, ReduceOp op);
std::int64_t allreduce_min(Comm& c, std::int64_t v);
std::vector<std::int64_t> allgather_int(Comm& c, std::int64_t v);

// Every rank learns the error with the smallest key (e.g. its position in the input), the message
// coming from the rank that holds it, and throws it as util::CollectiveError; nothing happens when
// every key is kNoError.
void agree_on_error(Comm& c, std::int64_t key, const std::string& msg);

}  // namespace medgpt::dist
