// Writes a file under a temporary name and renames it into place on commit(), so a failed run
// never leaves a partial output behind (the destructor removes an uncommitted temporary).
#pragma once

#include <fstream>
#include <string>

namespace medgpt::util {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ofstream& stream() { return out_; }
  const std::string& temp_path() const { return tmp_; }
  // Flushes, closes and renames to the final path; util::Error on any I/O failure.
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

// fsync of a file or directory (durability of a checkpoint before its COMMITTED marker).
void fsync_path(const std::string& path);

// Writes `bytes` to `path` atomically.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace medgpt::util
