// The bad-input tests' one helper: the util::Error message that f throws, or "" when it throws none.
#pragma once

#include <functional>
#include <string>

#include "util/error.hpp"

namespace medgpt::test {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const util::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace medgpt::test
