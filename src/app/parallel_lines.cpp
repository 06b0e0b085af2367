#include "app/parallel_lines.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include "parallel/agreement.hpp"
#include "util/error.hpp"
#include "util/mapped_file.hpp"
#include "util/progress.hpp"

namespace medgpt::app {

namespace {

bool line_start(std::string_view d, std::size_t s) { return s == 0 || s >= d.size() || d[s - 1] == '\n'; }

std::size_t align_to_line(std::string_view d, std::size_t s) {
  if (s >= d.size()) return d.size();
  if (line_start(d, s)) return s;
  const auto nl = d.find('\n', s);
  return nl == std::string_view::npos ? d.size() : nl + 1;
}

}  // namespace

LineStats map_lines(parallel::Comm& world, const std::string& input, const std::string& output, const LineFn& fn) {
  LineStats stats;

  // Open on every rank; a failure (same on all) is reported once.
  std::unique_ptr<util::MappedFile> file;
  std::string open_error;
  try {
    file = std::make_unique<util::MappedFile>(input);
  } catch (const std::exception& e) {
    open_error = e.what();
  }
  parallel::agree_on_error(world, open_error.empty() ? parallel::kNoError : 0, open_error);
  const std::string_view data = file->bytes();
  const auto P = static_cast<std::size_t>(world.size()), r = static_cast<std::size_t>(world.rank());
  const std::size_t begin = align_to_line(data, data.size() * r / P);
  const std::size_t end = align_to_line(data, data.size() * (r + 1) / P);
  const std::string_view mine = data.substr(begin, end - begin);

  // Line numbers: lines before this rank's range, from the other ranks' newline counts.
  const auto counts = parallel::allgather_int(world, static_cast<std::int64_t>(std::count(mine.begin(), mine.end(), '\n')));
  std::int64_t lineno = 1;
  for (std::size_t k = 0; k < r; ++k) lineno += counts[k];

  util::Progress prog("processing " + input, static_cast<double>(mine.size()));
  std::string out;
  std::int64_t error_line = parallel::kNoError, lines = 0;
  std::string error_msg;
  for (std::size_t pos = 0; pos < mine.size(); ++lineno) {
    auto nl = mine.find('\n', pos);
    if (nl == std::string_view::npos) nl = mine.size();
    const std::string_view line = mine.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    ++lines;
    try {
      fn(line, util::at(input, lineno), out);
    } catch (const std::exception& e) {
      error_line = lineno;
      error_msg = e.what();
      break;
    }
    if ((lines & 1023) == 0) prog.update(static_cast<double>(pos), std::to_string(lines) + " lines");
  }
  prog.finish();
  parallel::agree_on_error(world, error_line, error_msg);

  // Write in input order: rank k's bytes go at the sum of the sizes before it.
  const auto sizes = parallel::allgather_int(world, static_cast<std::int64_t>(out.size()));
  std::int64_t offset = 0, total = 0;
  for (std::size_t k = 0; k < P; ++k) {
    if (k < r) offset += sizes[k];
    total += sizes[k];
  }
  const std::string tmp = output + ".tmp";
  std::string io_error;
  if (r == 0) {
    const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || ::ftruncate(fd, total) != 0) io_error = output + ": cannot create output: " + std::strerror(errno) + "; check that the folder exists and is writable";
    if (fd >= 0) ::close(fd);
  }
  parallel::agree_on_error(world, io_error.empty() ? parallel::kNoError : 0, io_error);
  const int fd = ::open(tmp.c_str(), O_WRONLY);
  std::size_t done = 0;
  while (fd >= 0 && done < out.size()) {
    const ssize_t n = ::pwrite(fd, out.data() + done, out.size() - done, offset + static_cast<std::int64_t>(done));
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  if (fd < 0 || done < out.size() || ::close(fd) != 0)
    io_error = output + ": write failed: " + std::strerror(errno) + "; free disk space and rerun";
  if (parallel::allreduce_int(world, io_error.empty() ? 0 : 1, parallel::ReduceOp::kMax) != 0 && r == 0) std::remove(tmp.c_str());
  parallel::agree_on_error(world, io_error.empty() ? parallel::kNoError : world.rank(), io_error);
  if (r == 0 && std::rename(tmp.c_str(), output.c_str()) != 0)
    io_error = output + ": cannot rename temporary output: " + std::strerror(errno) + "; check permissions";
  parallel::agree_on_error(world, io_error.empty() ? parallel::kNoError : 0, io_error);

  stats.lines = parallel::allreduce_int(world, lines, parallel::ReduceOp::kSum);
  stats.input_bytes = static_cast<std::int64_t>(data.size());
  stats.seconds = prog.elapsed();
  return stats;
}

}  // namespace medgpt::app
