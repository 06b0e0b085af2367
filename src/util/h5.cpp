#include "util/h5.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace medgpt::util {

namespace {

// Closes an HDF5 handle of any kind on scope exit.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

// HDF5 prints its own error stack to stderr by default; medgpt reports errors itself.
void silence_hdf5() {
  static bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

}  // namespace

H5File H5File::create(const std::string& path) {
  silence_hdf5();
  // The 1.8 file format checksums its metadata (superblock, object headers), so a damaged header
  // fails to open instead of being misread; any HDF5 since 1.8 reads it.
  Handle access{H5Pcreate(H5P_FILE_ACCESS), H5Pclose};
  H5Pset_libver_bounds(access.id, H5F_LIBVER_V18, H5F_LIBVER_V18);
  // Data at 64-byte boundaries: a contiguous dataset can be memory-mapped as its element type.
  H5Pset_alignment(access.id, 1, 64);
  // ... whose object headers would carry modification times: off, so the same data makes the same file.
  Handle create{H5Pcreate(H5P_FILE_CREATE), H5Pclose};
  H5Pset_obj_track_times(create.id, 0);
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, create.id, access.id);
  if (id < 0) fail(path, "cannot create HDF5 file", "check that the folder exists and is writable");
  return H5File(id, path);
}

H5File H5File::open(const std::string& path) {
  silence_hdf5();
#if H5_VERSION_GE(1, 12, 0)
  const htri_t ok = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t ok = H5Fis_hdf5(path.c_str());
#endif
  if (ok <= 0) fail(path, "missing or not an HDF5 file", "check the path");
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) fail(path, "cannot open the HDF5 file: it is truncated or damaged", "restore it, or make it again (e.g. medgpt prepare)");
  return H5File(id, path);
}

H5File::~H5File() {
  if (id_ >= 0) H5Fclose(id_);
}

void H5File::close() {
  const hid_t id = id_;
  id_ = -1;
  const bool flushed = H5Fflush(id, H5F_SCOPE_LOCAL) >= 0;
  if (H5Fclose(id) < 0 || !flushed) fail(path_, "could not finish writing the file", "check free disk space");
}

void H5File::write(const std::string& name, hid_t type, const std::vector<std::uint64_t>& dims, const void* data) {
  std::vector<hsize_t> d(dims.begin(), dims.end());
  Handle space{d.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr), H5Sclose};
  // No modification times: the same data makes the same file (prepare on 1 or N ranks). "valid/tokens"
  // creates the group "valid" on the way, also without times.
  for (std::size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1)) {
    const std::string group = name.substr(0, slash);
    if (has(group)) continue;
    Handle gcpl{H5Pcreate(H5P_GROUP_CREATE), H5Pclose};
    H5Pset_obj_track_times(gcpl.id, 0);
    Handle g{H5Gcreate2(id_, group.c_str(), H5P_DEFAULT, gcpl.id, H5P_DEFAULT), H5Gclose};
    if (g.id < 0) fail(path_ + ": " + group, "cannot create group", "check free disk space");
  }
  Handle create{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  H5Pset_obj_track_times(create.id, 0);
  Handle set{H5Dcreate2(id_, name.c_str(), type, space.id, H5P_DEFAULT, create.id, H5P_DEFAULT), H5Dclose};
  if (set.id < 0) fail(path_ + ": " + name, "cannot create dataset", "check free disk space");
  std::uint64_t n = 1;
  for (auto x : dims) n *= x;
  if (n > 0 && H5Dwrite(set.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail(path_ + ": " + name, "write failed", "check free disk space");
}

bool H5File::has(const std::string& name) const { return H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0; }

std::vector<std::uint64_t> H5File::dims(const std::string& name) const {
  if (!has(name)) fail(path_ + ": " + name, "dataset missing", "the file is incomplete or not a medgpt file");
  Handle set{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  Handle space{H5Dget_space(set.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> d(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.id, d.data(), nullptr);
  return {d.begin(), d.end()};
}

std::uint64_t H5File::contiguous_offset(const std::string& name, hid_t type) const {
  if (!has(name)) fail(path_ + ": " + name, "dataset missing", "the file is incomplete or not a medgpt file");
  Handle set{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  Handle plist{H5Dget_create_plist(set.id), H5Pclose};
  Handle stored{H5Dget_type(set.id), H5Tclose};
  if (H5Pget_layout(plist.id) != H5D_CONTIGUOUS || H5Tequal(stored.id, type) <= 0) return kNoOffset;
  const haddr_t at = H5Dget_offset(set.id);
  return at == HADDR_UNDEF ? kNoOffset : static_cast<std::uint64_t>(at);
}

void H5File::read(const std::string& name, hid_t type, void* out) const {
  if (!has(name)) fail(path_ + ": " + name, "dataset missing", "the file is incomplete or not a medgpt file");
  Handle set{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  std::uint64_t n = 1;
  for (auto x : dims(name)) n *= x;
  if (n > 0 && H5Dread(set.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    fail(path_ + ": " + name, "read failed", "the file is damaged");
}

void H5File::read_block(const std::string& name, hid_t type, const std::vector<std::uint64_t>& start, const std::vector<std::uint64_t>& count,
                        void* out) const {
  const std::vector<std::uint64_t> d = dims(name);
  std::uint64_t n = 1;
  for (std::size_t i = 0; i < count.size(); ++i) {
    if (start.size() != d.size() || count.size() != d.size() || start[i] + count[i] > d[i])
      fail(path_ + ": " + name, "block outside the dataset", "the file does not belong to this checkpoint, or is damaged");
    n *= count[i];
  }
  if (n == 0) return;
  Handle set{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  Handle file_space{H5Dget_space(set.id), H5Sclose};
  std::vector<hsize_t> s0(start.begin(), start.end()), c0(count.begin(), count.end());
  Handle mem_space{d.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(c0.size()), c0.data(), nullptr), H5Sclose};
  if (!d.empty() && H5Sselect_hyperslab(file_space.id, H5S_SELECT_SET, s0.data(), nullptr, c0.data(), nullptr) < 0)
    fail(path_ + ": " + name, "cannot select the block", "the file is damaged");
  if (H5Dread(set.id, type, mem_space.id, file_space.id, H5P_DEFAULT, out) < 0) fail(path_ + ": " + name, "read failed", "the file is damaged");
}

std::vector<std::string> H5File::datasets(const std::string& group) const {
  std::vector<std::string> names;
  if (!group.empty() && !has(group)) return names;
  Handle g{H5Gopen2(id_, group.empty() ? "/" : group.c_str(), H5P_DEFAULT), H5Gclose};
  if (g.id < 0) fail(path_ + ": " + group, "is not a group", "the file is not a medgpt file or is damaged");
#if H5_VERSION_GE(1, 12, 0)
  using LinkInfo = H5L_info2_t;
  const auto iterate = H5Literate2;
#else
  using LinkInfo = H5L_info_t;
  const auto iterate = H5Literate;
#endif
  iterate(
      g.id, H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const LinkInfo*, void* op) -> herr_t {
        static_cast<std::vector<std::string>*>(op)->emplace_back(name);
        return 0;
      },
      &names);
  std::sort(names.begin(), names.end());
  return names;
}

hid_t H5File::open_object(const std::string& obj) const {
  return H5Oopen(id_, obj.empty() ? "/" : obj.c_str(), H5P_DEFAULT);
}

void H5File::set_attr(const std::string& obj, const std::string& key, const std::string& value) {
  Handle o{open_object(obj), H5Oclose};
  Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(type.id, std::max<std::size_t>(value.size(), 1));
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle a{H5Acreate2(o.id, key.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  if (a.id < 0 || H5Awrite(a.id, type.id, padded.data()) < 0) fail(path_ + ": " + obj + "@" + key, "cannot write attribute", "check the file");
}

void H5File::set_attr(const std::string& obj, const std::string& key, const std::vector<std::int64_t>& value) {
  Handle o{open_object(obj), H5Oclose};
  const hsize_t n = value.size();
  Handle space{n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL), H5Sclose};
  Handle a{H5Acreate2(o.id, key.c_str(), H5T_NATIVE_INT64, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  if (a.id < 0 || (n && H5Awrite(a.id, H5T_NATIVE_INT64, value.data()) < 0))
    fail(path_ + ": " + obj + "@" + key, "cannot write attribute", "check the file");
}

bool H5File::has_attr(const std::string& obj, const std::string& key) const {
  Handle o{open_object(obj), H5Oclose};
  return o.id >= 0 && H5Aexists(o.id, key.c_str()) > 0;
}

std::string H5File::attr_string(const std::string& obj, const std::string& key) const {
  if (!has_attr(obj, key)) fail(path_ + ": " + (obj.empty() ? "" : obj + "@") + key, "attribute missing", "the file is not a medgpt file or is damaged");
  Handle o{open_object(obj), H5Oclose};
  Handle a{H5Aopen(o.id, key.c_str(), H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(a.id), H5Tclose};
  std::string s(H5Tget_size(type.id), '\0');
  Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mem.id, s.size());
  H5Aread(a.id, mem.id, s.data());
  s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
  return s;
}

std::vector<std::int64_t> H5File::attr_ints(const std::string& obj, const std::string& key) const {
  if (!has_attr(obj, key)) fail(path_ + ": " + (obj.empty() ? "" : obj + "@") + key, "attribute missing", "the file is not a medgpt file or is damaged");
  Handle o{open_object(obj), H5Oclose};
  Handle a{H5Aopen(o.id, key.c_str(), H5P_DEFAULT), H5Aclose};
  Handle space{H5Aget_space(a.id), H5Sclose};
  const hssize_t n = H5Sget_simple_extent_npoints(space.id);
  std::vector<std::int64_t> v(static_cast<std::size_t>(std::max<hssize_t>(n, 0)));
  if (!v.empty()) H5Aread(a.id, H5T_NATIVE_INT64, v.data());
  return v;
}

}  // namespace medgpt::util
