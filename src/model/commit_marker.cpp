#include "model/commit_marker.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/sha256.hpp"

namespace medgpt::model {

namespace fs = std::filesystem;

FileDigest digest_file(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  return {name, static_cast<std::uint64_t>(fs::file_size(path)), util::sha256_file(path)};
}

std::string to_lines(const std::vector<FileDigest>& files) {
  std::string s;
  for (const FileDigest& f : files) s += f.name + "\t" + std::to_string(f.bytes) + "\t" + f.sha256 + "\n";
  return s;
}

std::vector<FileDigest> from_lines(const std::string& lines) {
  std::vector<FileDigest> out;
  std::istringstream in(lines);
  std::string name, bytes, sha;
  while (std::getline(in, name, '\t') && std::getline(in, bytes, '\t') && std::getline(in, sha)) out.push_back({name, std::stoull(bytes), sha});
  return out;
}

void write_commit_marker(const std::string& dir, const std::vector<FileDigest>& files) {
  nlohmann::ordered_json j;
  j["format"] = "medgpt-committed";
  j["files"] = nlohmann::ordered_json::object();
  for (const FileDigest& f : files) j["files"][f.name] = {{"bytes", f.bytes}, {"sha256", f.sha256}};
  util::write_file_atomic(dir + "/COMMITTED", j.dump(1) + "\n");
  util::fsync_path(dir + "/COMMITTED");
}

std::vector<FileDigest> digest_folder(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "COMMITTED") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<FileDigest> out;
  for (const std::string& n : names) out.push_back(digest_file(dir, n));
  return out;
}

std::string verify_checkpoint(const std::string& dir) {
  const std::string marker = dir + "/COMMITTED";
  std::error_code ec;
  if (!fs::exists(marker, ec)) return "no COMMITTED marker (half-written)";
  const std::string text = util::read_file(marker);
  if (text == "ok\n") return "";  // written before checksums: committed, nothing to verify
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return "COMMITTED is damaged (not the JSON it was written as)";
  }
  if (!j.is_object() || !j.contains("files") || !j["files"].is_object()) return "COMMITTED is damaged (no file list)";
  for (const auto& [name, want] : j["files"].items()) {
    const std::string path = dir + "/" + name;
    if (!fs::is_regular_file(path, ec)) return name + ": missing";
    const std::uint64_t bytes = fs::file_size(path, ec), expect = want.value("bytes", std::uint64_t{0});
    if (bytes != expect)
      return name + ": " + std::to_string(bytes) + " bytes, COMMITTED records " + std::to_string(expect) + (bytes < expect ? " (truncated)" : "");
    if (util::sha256_file(path) != want.value("sha256", std::string()))
      return name + ": its SHA-256 differs from the one COMMITTED records (the bytes changed after the write)";
  }
  return "";
}

}  // namespace medgpt::model
