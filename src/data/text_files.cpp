#include "data/text_files.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/json.hpp"
#include "util/mapped_file.hpp"

namespace medgpt::data {

namespace fs = std::filesystem;

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool is_text_file(const fs::path& p) {
  const std::string n = p.filename().string();
  return ends_with(n, ".txt") || ends_with(n, ".jsonl") || ends_with(n, ".json");
}
bool is_jsonl(const std::string& path) { return ends_with(path, ".jsonl") || ends_with(path, ".json"); }
}  // namespace

std::vector<std::string> expand_text_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(in, ec))
        if (e.is_regular_file() && is_text_file(e.path())) found.push_back(e.path().string());
      if (found.empty()) util::fail(in, "folder holds no *.txt, *.jsonl or *.json file", "point --input at the corpus files");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(in, ec)) {
      out.push_back(in);
    } else {
      util::fail(in, "no such file or folder", "check the --input path");
    }
  }
  return out;
}

void for_each_text(const std::string& path, const std::function<void(std::string_view, const std::string&)>& fn) {
  util::MappedFile file(path);
  const std::string_view d = file.bytes();
  const bool jsonl = is_jsonl(path);
  std::int64_t lineno = 0;
  for (std::size_t pos = 0; pos < d.size();) {
    auto nl = d.find('\n', pos);
    if (nl == std::string_view::npos) nl = d.size();
    std::string_view line = d.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = util::at(path, lineno);
    if (!jsonl) {
      fn(line, where);
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      util::fail(where, "not valid JSON (" + std::string(e.what()).substr(std::string(e.what()).find("parse error")) + ")",
                 "each line must be one JSON object such as {\"text\": \"...\"}");
    }
    if (!j.is_object() || !j.contains("text"))
      util::fail(where + ": text", "missing", "each line must be a JSON object with a \"text\" string");
    if (!j["text"].is_string()) util::fail(where + ": text", "not a string", "each line must be a JSON object with a \"text\" string");
    const std::string& text = j["text"].get_ref<const std::string&>();
    fn(text, where);
  }
}

std::size_t total_bytes(const std::vector<std::string>& files) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& f : files) n += static_cast<std::size_t>(fs::file_size(f, ec));
  return n;
}

}  // namespace medgpt::data
