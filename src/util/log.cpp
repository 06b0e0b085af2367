#include "util/log.hpp"

#include <unistd.h>

#include <cstdio>

namespace medgpt::util {

namespace {
int g_rank = 0, g_size = 1;
bool g_all = false;
bool g_progress_open = false;

std::string prefix() {
  return g_all && g_size > 1 ? "medgpt[" + std::to_string(g_rank) + "]: " : "medgpt: ";
}
}  // namespace

void set_log_rank(int rank, int world_size, bool all_ranks) {
  g_rank = rank;
  g_size = world_size;
  g_all = all_ranks;
}

bool log_enabled() { return g_rank == 0 || g_all; }

void log(const std::string& msg) {
  if (!log_enabled()) return;
  log_end_line();
  std::fprintf(stderr, "%s%s\n", prefix().c_str(), msg.c_str());
  std::fflush(stderr);
}

void log_progress(const std::string& msg) {
  if (!log_enabled()) return;
  // On a terminal the line is rewritten in place; in a log file each update is its own line.
  if (::isatty(2)) {
    std::fprintf(stderr, "\r%s%s\033[K", prefix().c_str(), msg.c_str());
    g_progress_open = true;
  } else {
    std::fprintf(stderr, "%s%s\n", prefix().c_str(), msg.c_str());
  }
  std::fflush(stderr);
}

void log_end_line() {
  if (g_progress_open) {
    std::fputc('\n', stderr);
    g_progress_open = false;
  }
}

}  // namespace medgpt::util
