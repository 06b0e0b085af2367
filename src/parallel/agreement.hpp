// Small collective helpers for control flow: integers and strings across ranks, errors that every
// rank raises together (so a bad record found by one rank ends the job cleanly on all of them), and
// facts that rank 0 decides for all.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "parallel/comm.hpp"

namespace medgpt::parallel {

constexpr std::int64_t kNoError = std::numeric_limits<std::int64_t>::max();

std::int64_t allreduce_int(Comm& c, std::int64_t v, ReduceOp op);
std::int64_t allreduce_min(Comm& c, std::int64_t v);
std::vector<std::int64_t> allgather_int(Comm& c, std::int64_t v);

// Every rank learns the error with the smallest key (e.g. its position in the input), the message
// coming from the rank that holds it, and throws it as util::CollectiveError; nothing happens when
// every key is kNoError.
void agree_on_error(Comm& c, std::int64_t key, const std::string& msg);

// agree_on_error's key for ranks that read consecutive shares of one ordered input made of files,
// each rank stopping at its first error: the earliest error is in the lowest file, then the lowest
// rank (a rank's share never starts before a lower rank's). Exact for any rank count.
inline std::int64_t input_order_key(std::size_t file, int rank, int ranks) {
  return static_cast<std::int64_t>(file) * ranks + rank;
}

// Every rank's string, in rank order.
std::vector<std::string> allgather_strings(Comm& c, const std::string& s);
// root's string on every rank.
std::string broadcast_string(Comm& c, const std::string& s, int root = 0);

// Runs `body` on every rank; a util::Error (or other std::exception) thrown on any rank is raised
// on every rank, as util::CollectiveError with the lowest failing rank's message.
template <class F>
void together(Comm& c, F&& body) {
  std::int64_t key = kNoError;
  std::string msg;
  try {
    body();
  } catch (const std::exception& e) {
    key = c.rank();
    msg = e.what();
  }
  agree_on_error(c, key, msg);
}

// Rank 0 alone does `body` (writes a file, makes a folder, moves checkpoints); every rank returns
// when it is done, and an error it throws is raised on every rank. The barrier of rank 0's work.
template <class F>
void on_root(Comm& c, F&& body) {
  together(c, [&] {
    if (c.rank() == 0) body();
  });
}

// A fact read from the filesystem (a file exists, the newest checkpoint, a valid cache) decided once:
// rank 0 runs `decide` and every rank gets its answer (a bool or a std::string), so ranks whose
// views of a shared filesystem differ (NFS attribute caching) still take the same path. An error
// thrown by `decide` is raised on every rank.
template <class F>
auto root_decides(Comm& c, F&& decide) -> decltype(decide()) {
  using T = decltype(decide());
  static_assert(std::is_same_v<T, bool> || std::is_same_v<T, std::string>, "root_decides answers a bool or a std::string");
  T answer{};
  on_root(c, [&] { answer = decide(); });
  if constexpr (std::is_same_v<T, bool>) return allreduce_int(c, c.rank() == 0 && answer ? 1 : 0, ReduceOp::kMax) != 0;
  else return broadcast_string(c, answer, 0);
}

}  // namespace medgpt::parallel
