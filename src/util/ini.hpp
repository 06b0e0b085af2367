// INI text as medgpt's config files write it: "[section]" headers, "key = value" lines, '#' or ';'
// comments, blank lines. A key inside a section is "section.key". Malformed lines are util::Error
// naming path:line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace medgpt::util {

struct IniEntry {
  std::int64_t line = 0;  // 1-based
  std::string key, value;
};

std::vector<IniEntry> parse_ini(std::string_view text, const std::string& path);

}  // namespace medgpt::util
