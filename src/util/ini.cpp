#include "util/ini.hpp"

#include "util/error.hpp"

namespace medgpt::util {

namespace {
std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}
}  // namespace

std::vector<IniEntry> parse_ini(std::string_view text, const std::string& path) {
  std::vector<IniEntry> out;
  std::string section;
  std::int64_t n = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t eol = std::min(text.find('\n', pos), text.size());
    const std::string t = trim(text.substr(pos, eol - pos));
    pos = eol + 1;
    ++n;
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[') {
      if (t.size() < 2 || t.back() != ']') fail(at(path, n), "malformed section header \"" + t + "\"", "write [section]");
      section = trim(std::string_view(t).substr(1, t.size() - 2));
      continue;
    }
    const auto eq = t.find('=');
    if (eq == std::string::npos) fail(at(path, n), "expected key = value, got \"" + t + "\"", "fix the line");
    const std::string key = trim(std::string_view(t).substr(0, eq));
    if (key.empty()) fail(at(path, n), "a value without a key", "write key = value");
    out.push_back({n, section.empty() ? key : section + "." + key, trim(std::string_view(t).substr(eq + 1))});
  }
  return out;
}

}  // namespace medgpt::util
