#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.hpp"

namespace medgpt::util {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) fail(path_, std::string("cannot create output: ") + std::strerror(errno), "check that the folder exists and is writable");
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::commit() {
  out_.flush();
  const bool ok = static_cast<bool>(out_);
  out_.close();
  if (!ok) fail(path_, "write failed (disk full?)", "free space and rerun");
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail(path_, std::string("cannot rename temporary output: ") + std::strerror(errno), "check permissions");
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.commit();
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) util::fail(path, std::string("cannot open to sync: ") + std::strerror(errno), "check the file system");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) util::fail(path, std::string("fsync failed: ") + std::strerror(err), "check the file system (full or read-only?)");
}

}  // namespace medgpt::util
