// An input file of records, opened once: memory-mapped (corpora can exceed RAM) or, for *.gz,
// inflated into memory; its format from the name and first byte. Also the folder expansion for
// `--input`. Iterating the records is for_each_record.hpp.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/readers/kind.hpp"

namespace medgpt::util {
class MappedFile;
}

namespace medgpt::data {

enum class FileFormat {
  JsonLines,  // *.jsonl, and *.json that does not start with '[': one JSON object per line
  JsonArray,  // *.json whose first non-blank byte is '[': one array of JSON objects
  Text,       // *.txt: plain text documents (pt only)
};

class RecordFile {
 public:
  // util::Error naming the path if it cannot be read or inflated.
  explicit RecordFile(const std::string& path);
  ~RecordFile();
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;

  const std::string& path() const { return path_; }
  // The (inflated) contents without a leading UTF-8 byte-order mark. Byte ranges given to
  // for_each_record_in are offsets into this.
  std::string_view bytes() const { return bytes_; }
  FileFormat format() const { return format_; }
  bool compressed() const { return compressed_; }

 private:
  std::string path_;
  std::unique_ptr<util::MappedFile> map_;
  std::string inflated_;
  std::string_view bytes_;
  FileFormat format_ = FileFormat::JsonLines;
  bool compressed_ = false;
};

// True for names the readers take: *.jsonl, *.json, *.txt, each optionally followed by .gz.
bool is_record_file_name(const std::string& path);

// --input expansion: files named directly (must exist), plus the record files under each folder,
// recursively and sorted (expand_text_inputs, plus *.jsonl.gz / *.json.gz / *.txt.gz). For kinds
// other than pt, *.txt files inside folders are left out (notes, READMEs); a .txt named directly
// is kept so that reading it says why it cannot be used. util::Error when a folder has none.
std::vector<std::string> expand_record_inputs(const std::vector<std::string>& inputs, Kind kind);

}  // namespace medgpt::data
