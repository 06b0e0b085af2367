// Shared by the libFuzzer targets: an input is accepted or refused with a util::Error (a one-line
// message for the user); any other exception, a crash or a sanitizer report is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace medgpt::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// Runs body; util::Error is the expected refusal of bad input.
template <class F>
void refusal_ok(F&& body) {
  try {
    body();
  } catch (const util::Error&) {
  }
}

}  // namespace medgpt::fuzz
