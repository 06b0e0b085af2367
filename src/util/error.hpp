// One-line user-facing errors: `medgpt: error: <where>: <what>; <what to do>`.
// Code below app/ throws util::Error; app/main catches it, prints the line and exits non-zero
// (or calls MPI_Abort when other ranks could be left waiting).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace medgpt::util {

class Error : public std::runtime_error {
 public:
  // where: "file", "file:line" or "file:line: field"; may be empty.
  Error(std::string where, std::string what, std::string todo = {});
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

// "path:line" (line >= 1), or "path" when line is 0.
std::string at(const std::string& path, std::int64_t line = 0);

// Throws util::Error.
[[noreturn]] void fail(const std::string& where, const std::string& what, const std::string& todo = {});

// The message printed for an error: "medgpt: error: <where>: <what>; <todo>".
std::string error_line(const std::exception& e);

}  // namespace medgpt::util

namespace medgpt::util {

// An error every rank raised together (after agreeing on it): main prints it once, on rank 0,
// and the job exits normally with a non-zero code instead of calling MPI_Abort.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

}  // namespace medgpt::util
