// Rank-aware logging to stderr: rank 0 only by default, every rank (prefixed) with --log-all-ranks.
#pragma once

#include <string>

namespace medgpt::util {

// Set once after MPI start-up.
void set_log_rank(int rank, int world_size, bool all_ranks);
bool log_enabled();
// "medgpt: <msg>" (or "medgpt[3]: <msg>" when several ranks log).
void log(const std::string& msg);
// Same, but written over the current line (\r), for progress; call log_end_line() to finish.
void log_progress(const std::string& msg);
void log_end_line();

}  // namespace medgpt::util
