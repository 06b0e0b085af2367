#include "util/json.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.hpp"

namespace medgpt::util {

std::string read_file(const std::string& path) {
  if (is_directory(path)) fail(path, "is a directory, not a file", "pass a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno), "check the path");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::size_t line_of(const std::string& text, std::size_t pos) {
  pos = std::min(pos, text.size());
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
}

nlohmann::json parse_json(const std::string& text, const std::string& path) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based and points just past the offending character.
    const std::size_t line = line_of(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    if (auto p = what.find("parse error"); p != std::string::npos) what = what.substr(p);
    fail(at(path, static_cast<std::int64_t>(line)), "malformed JSON: " + what, "fix the file or regenerate it");
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double (out_of_range.406)
    fail(path, std::string("malformed JSON: ") + e.what(), "fix the file or regenerate it");
  }
}

nlohmann::json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace medgpt::util
