// A read-only memory map of a whole file (input corpora can be larger than memory).
#pragma once

#include <string>
#include <string_view>

namespace medgpt::util {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // util::Error naming the path on failure
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace medgpt::util
