// A read-only memory map of a whole file (input corpora can be larger than memory).
#pragma once

#include <string>
#include <string_view>

namespace medgpt::util {

class MappedFile {
 public:
  // How the file will be read: front to back (input text: aggressive readahead), or at random
  // (a training corpus served in shuffled order: no readahead; the loader prefetches instead).
  enum class Access { kSequential, kRandom };
  explicit MappedFile(const std::string& path, Access access = Access::kSequential);  // util::Error naming the path on failure
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

// Asks the kernel to start reading [p, p + n) of a mapping into the page cache now (madvise
// WILLNEED on the pages it spans), without waiting for it.
void prefetch_pages(const void* p, std::size_t n);

}  // namespace medgpt::util
