// INI config files (util/ini): any text is entries with their line numbers, or one line naming the
// malformed line.
#include "common.hpp"
#include "util/ini.hpp"

using namespace medgpt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::refusal_ok([&] {
    std::int64_t last = 0;
    for (const util::IniEntry& e : util::parse_ini(fuzz::as_text(data, size), "fuzz.ini")) {
      if (e.line <= last || e.key.empty()) __builtin_trap();
      last = e.line;
    }
  });
  return 0;
}
