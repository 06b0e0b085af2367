#include "data/text_files.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/json.hpp"
#include "data/readers/for_each_record.hpp"
#include "data/readers/pt_reader.hpp"

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
  // A pt record reader does the work: .txt lines, or the "text" field of JSONL/JSON records.
  for_each_record(path, Kind::Pt, PtDocSep::Line, [&](const nlohmann::json& record, const std::string& where) {
    fn(parse_pt(record, where).text, where);
  });
}

std::size_t total_bytes(const std::vector<std::string>& files) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& f : files) n += static_cast<std::size_t>(fs::file_size(f, ec));
  return n;
}

}  // namespace medgpt::data
