#include "util/error.hpp"

namespace medgpt::util {

namespace {
std::string compose(const std::string& where, const std::string& what, const std::string& todo) {
  std::string s;
  if (!where.empty()) s += where + ": ";
  s += what;
  if (!todo.empty()) s += "; " + todo;
  return s;
}
}  // namespace

Error::Error(std::string where, std::string what, std::string todo)
    : std::runtime_error(compose(where, what, todo)), where_(std::move(where)) {}

std::string at(const std::string& path, std::int64_t line) {
  return line > 0 ? path + ":" + std::to_string(line) : path;
}

void fail(const std::string& where, const std::string& what, const std::string& todo) {
  throw Error(where, what, todo);
}

std::string error_line(const std::exception& e) {
  std::string msg = e.what();
  // Keep it one line whatever a library put in its message.
  for (auto& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  return "medgpt: error: " + msg;
}

}  // namespace medgpt::util
