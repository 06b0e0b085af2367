// Line-parallel processing of a JSONL file over MPI ranks: each rank takes a contiguous byte
// range (aligned to line starts), maps each non-blank line to an output line, and the outputs are
// written in input order into one file. The earliest bad line (by line number, whatever the rank
// count) is reported on every rank alike, and no partial output is left behind.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "parallel/comm.hpp"

namespace medgpt::app {

// fn(line, where) appends the output for one input line (with its '\n') to `out`; it throws
// util::Error to reject the line (`where` is "path:lineno").
using LineFn = std::function<void(std::string_view line, const std::string& where, std::string& out)>;

struct LineStats {
  std::int64_t lines = 0;        // non-blank input lines, all ranks
  std::int64_t input_bytes = 0;  // all ranks
  double seconds = 0;
};

LineStats map_lines(parallel::Comm& world, const std::string& input, const std::string& output, const LineFn& fn);

}  // namespace medgpt::app
