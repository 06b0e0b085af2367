#include "data/readers/record_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "data/text_files.hpp"
#include "util/error.hpp"
#include "util/mapped_file.hpp"

namespace medgpt::data {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The name without a trailing ".gz", which decides the format.
std::string inner_name(const std::string& path) {
  return ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path;
}

bool is_txt(const std::string& path) { return ends_with(inner_name(path), ".txt"); }

std::string inflate_file(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) util::fail(path, "cannot open", "check the path");
  gzbuffer(gz, 1 << 17);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(gz, buf, sizeof buf);
    if (n < 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (n == 0) break;
  }
  int err = Z_OK;
  const char* msg = gzerror(gz, &err);
  const std::string what = msg ? msg : "";
  gzclose(gz);
  if (err != Z_OK && err != Z_STREAM_END)
    util::fail(path, "cannot decompress: " + what, "check that the file is a complete gzip file (gzip -t)");
  return out;
}

}  // namespace

RecordFile::RecordFile(const std::string& path) : path_(path) {
  if (ends_with(path, ".gz")) {
    compressed_ = true;
    inflated_ = inflate_file(path);
    bytes_ = inflated_;
  } else {
    map_ = std::make_unique<util::MappedFile>(path);
    bytes_ = map_->bytes();
  }
  if (bytes_.substr(0, 3) == "\xEF\xBB\xBF") bytes_.remove_prefix(3);  // editors on Windows write one
  const std::string name = inner_name(path);
  if (ends_with(name, ".txt")) {
    format_ = FileFormat::Text;
  } else if (ends_with(name, ".json")) {
    const auto first = bytes_.find_first_not_of(" \t\r\n");
    format_ = first != std::string_view::npos && bytes_[first] == '[' ? FileFormat::JsonArray : FileFormat::JsonLines;
  } else {
    format_ = FileFormat::JsonLines;  // .jsonl and anything named explicitly
  }
}

RecordFile::~RecordFile() = default;

bool is_record_file_name(const std::string& path) {
  const std::string n = inner_name(path);
  return ends_with(n, ".jsonl") || ends_with(n, ".json") || ends_with(n, ".txt");
}

std::vector<std::string> expand_record_inputs(const std::vector<std::string>& inputs, Kind kind) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      auto named = expand_text_inputs({in});  // checks that it exists
      out.insert(out.end(), named.begin(), named.end());
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(in, ec))
      if (e.is_regular_file() && ends_with(e.path().string(), ".gz") && is_record_file_name(e.path().string()))
        found.push_back(e.path().string());
    try {
      auto plain = expand_text_inputs({in});
      found.insert(found.end(), plain.begin(), plain.end());
    } catch (const util::Error&) {
      if (found.empty()) throw;  // the folder holds no record file at all
    }
    if (kind != Kind::Pt) found.erase(std::remove_if(found.begin(), found.end(), is_txt), found.end());
    if (found.empty())
      util::fail(in, "folder holds no *.jsonl or *.json file (*.txt is read only for --kind pt)",
                 "point --input at the record files");
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

}  // namespace medgpt::data
