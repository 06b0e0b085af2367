// A thin RAII layer over the HDF5 C API for what medgpt stores: flat datasets of raw numbers
// (uncompressed, contiguous), with string and integer-array attributes. Errors name the file
// and the dataset.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace medgpt::util {

class H5File {
 public:
  static H5File create(const std::string& path);  // truncates
  static H5File open(const std::string& path);    // read-only
  H5File(H5File&& o) noexcept : id_(o.id_), path_(std::move(o.path_)) { o.id_ = -1; }
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  ~H5File();  // closes, ignoring errors: writers call close() to see them
  // Flushes and closes the file; util::Error when the last writes fail (a full disk shows here).
  void close();

  hid_t id() const { return id_; }
  const std::string& path() const { return path_; }

  // Dataset `name` ("tokens", or "valid/tokens" in a group made on the way) of `dims` elements of
  // `type` (H5T_NATIVE_*), from `data`.
  void write(const std::string& name, hid_t type, const std::vector<std::uint64_t>& dims, const void* data);
  bool has(const std::string& name) const;
  std::vector<std::uint64_t> dims(const std::string& name) const;
  // Reads the whole dataset into `out` (sized by the caller: elements x element size of `type`).
  void read(const std::string& name, hid_t type, void* out) const;
  // Reads the block of `count` elements per dimension starting at `start` (a hyperslab) into `out`,
  // row-major: only those bytes come from the disk.
  void read_block(const std::string& name, hid_t type, const std::vector<std::uint64_t>& start, const std::vector<std::uint64_t>& count,
                  void* out) const;
  // The file offset of a dataset stored contiguously (no chunks, no filters) with elements of
  // exactly `type`, for reading it through a memory map; kNoOffset otherwise.
  static constexpr std::uint64_t kNoOffset = ~std::uint64_t{0};
  std::uint64_t contiguous_offset(const std::string& name, hid_t type) const;
  // Names of the objects directly under `group` (the root group by default), sorted.
  std::vector<std::string> datasets(const std::string& group = "") const;

  // Attributes on the file root ("") or a dataset.
  void set_attr(const std::string& obj, const std::string& key, const std::string& value);
  void set_attr(const std::string& obj, const std::string& key, const std::vector<std::int64_t>& value);
  std::string attr_string(const std::string& obj, const std::string& key) const;
  std::vector<std::int64_t> attr_ints(const std::string& obj, const std::string& key) const;
  bool has_attr(const std::string& obj, const std::string& key) const;

 private:
  H5File(hid_t id, std::string path) : id_(id), path_(std::move(path)) {}
  hid_t open_object(const std::string& obj) const;
  hid_t id_;
  std::string path_;
};

}  // namespace medgpt::util
