#include "util/tfevents.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <system_error>

#include "util/error.hpp"

namespace medgpt::util {

namespace fs = std::filesystem;

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------
namespace tfevents {

namespace {

constexpr std::size_t kHeaderBytes = 12;  // uint64 length + uint32 masked CRC of it
constexpr std::size_t kFooterBytes = 4;   // uint32 masked CRC of the data

enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_key(std::string& out, std::uint32_t field, WireType type) { put_varint(out, (field << 3) | type); }
void put_bytes_field(std::string& out, std::uint32_t field, const std::string& bytes) {
  put_key(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}
std::uint64_t bits_of(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}
std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
// Event fields 1 (wall_time) and 2 (step), left out when zero as proto3 does.
void put_time_and_step(std::string& ev, double wall_time, std::int64_t step) {
  if (bits_of(wall_time) != 0) {
    put_key(ev, 1, kFixed64);
    put_le(ev, bits_of(wall_time), 8);
  }
  if (step != 0) {
    put_key(ev, 2, kVarint);
    put_varint(ev, static_cast<std::uint64_t>(step));  // int64: negative steps take 10 bytes
  }
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, size);
  return crc.checksum();
}

std::uint32_t mask_crc(std::uint32_t crc) {
  return static_cast<std::uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

std::string encode_scalars_event(const std::vector<std::pair<std::string, double>>& values, std::int64_t step,
                                 double wall_time) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string v;
    if (!tag.empty()) put_bytes_field(v, 1, tag);
    put_key(v, 2, kFixed32);  // simple_value: a oneof member, written even when 0
    put_le(v, bits_of(static_cast<float>(value)), 4);
    put_bytes_field(summary, 1, v);
  }
  std::string ev;
  put_time_and_step(ev, wall_time, step);
  put_bytes_field(ev, 5, summary);
  return ev;
}

std::string encode_file_version_event(double wall_time, const std::string& file_version) {
  std::string ev;
  put_time_and_step(ev, wall_time, 0);
  if (!file_version.empty()) put_bytes_field(ev, 3, file_version);
  return ev;
}

std::string frame_record(const std::string& data) {
  std::string rec;
  rec.reserve(kHeaderBytes + data.size() + kFooterBytes);
  put_le(rec, data.size(), 8);
  put_le(rec, mask_crc(crc32c(rec.data(), 8)), 4);
  rec += data;
  put_le(rec, mask_crc(crc32c(data.data(), data.size())), 4);
  return rec;
}

}  // namespace tfevents

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------
namespace {

constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string h(buf);
  for (auto& c : h)
    if (c == '/') c = '_';
  return h;
}

}  // namespace

TfEventsWriter::TfEventsWriter(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    fail(dir, "cannot create the TensorBoard folder" + (ec ? ": " + ec.message() : std::string()),
         "check the path and its permissions");

  const double now = unix_time_now();
  const std::string base = (fs::path(dir) / ("events.out.tfevents." + std::to_string(static_cast<long long>(now)) +
                                              "." + hostname()))
                               .string();
  // A new file every time: O_EXCL, with a numeric suffix when a run started in the same second.
  for (int n = 0; fd_ < 0; ++n) {
    path_ = n == 0 ? base : base + "." + std::to_string(n);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || n >= 1000))
      fail(path_, std::string("cannot create the TensorBoard event file: ") + std::strerror(errno),
           "check the folder's permissions and free space");
  }
  append(tfevents::encode_file_version_event(now));
  flush();
}

TfEventsWriter::~TfEventsWriter() {
  try {
    flush();
  } catch (...) {
  }
  if (fd_ >= 0) ::close(fd_);
}

void TfEventsWriter::scalar(const std::string& tag, double value, std::int64_t step, double wall_time) {
  scalars({{tag, value}}, step, wall_time);
}

void TfEventsWriter::scalars(const std::vector<std::pair<std::string, double>>& values, std::int64_t step,
                             double wall_time) {
  if (values.empty()) return;
  for (const auto& v : values)
    if (v.first.empty()) fail(path_, "a TensorBoard scalar needs a tag", "name the metric");
  append(tfevents::encode_scalars_event(values, step, wall_time));
  if (buffer_.size() >= kFlushBytes) flush();
}

void TfEventsWriter::append(const std::string& event_bytes) { buffer_ += tfevents::frame_record(event_bytes); }

void TfEventsWriter::flush() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      buffer_.erase(0, done);
      fail(path_, std::string("cannot write the TensorBoard event file: ") + std::strerror(err),
           "check free space");
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------
namespace {

std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A protobuf wire-format cursor; every malformed input throws with the file and record named.
class ProtoReader {
 public:
  ProtoReader(std::string_view data, const std::string& file, std::size_t record)
      : data_(data), file_(file), record_(record) {}

  bool done() const { return pos_ >= data_.size(); }

  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) bad("truncated varint");
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return v;
    }
    bad("varint longer than 10 bytes");
  }
  std::uint64_t fixed(int bytes) {
    if (data_.size() - pos_ < static_cast<std::size_t>(bytes)) bad("truncated fixed-width field");
    const std::uint64_t v = get_le(data_.data() + pos_, bytes);
    pos_ += bytes;
    return v;
  }
  std::string_view bytes() {
    const std::uint64_t n = varint();
    if (n > data_.size() - pos_) bad("length-delimited field runs past its message");
    const std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void skip(std::uint32_t wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: fixed(8); break;
      case 2: bytes(); break;
      case 5: fixed(4); break;
      default: bad("unsupported protobuf wire type " + std::to_string(wire_type));
    }
  }
  ProtoReader sub(std::string_view data) const { return ProtoReader(data, file_, record_); }

  [[noreturn]] void bad(const std::string& what) const {
    fail(file_, "record " + std::to_string(record_) + ": malformed Event protobuf (" + what + ")",
         "the file is corrupt or not a TensorBoard event file");
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  const std::string& file_;
  std::size_t record_;
};

void parse_value(ProtoReader r, std::vector<TfScalar>& out) {
  TfScalar s;
  bool simple = false;
  while (!r.done()) {
    const std::uint64_t key = r.varint();
    const auto field = key >> 3;
    const auto type = static_cast<std::uint32_t>(key & 7);
    if (field == 1 && type == 2) {
      s.tag = std::string(r.bytes());
    } else if (field == 2 && type == 5) {
      const auto u = static_cast<std::uint32_t>(r.fixed(4));
      std::memcpy(&s.value, &u, sizeof u);
      simple = true;
    } else {
      r.skip(type);
    }
  }
  if (simple) out.push_back(std::move(s));
}

void parse_event(ProtoReader r, std::vector<TfScalar>& out) {
  const std::size_t first = out.size();
  double wall_time = 0;
  std::int64_t step = 0;
  while (!r.done()) {
    const std::uint64_t key = r.varint();
    const auto field = key >> 3;
    const auto type = static_cast<std::uint32_t>(key & 7);
    if (field == 1 && type == 1) {
      const std::uint64_t u = r.fixed(8);
      std::memcpy(&wall_time, &u, sizeof u);
    } else if (field == 2 && type == 0) {
      step = static_cast<std::int64_t>(r.varint());
    } else if (field == 5 && type == 2) {
      ProtoReader summary = r.sub(r.bytes());
      while (!summary.done()) {
        const std::uint64_t skey = summary.varint();
        if (skey == ((1 << 3) | 2))
          parse_value(summary.sub(summary.bytes()), out);
        else
          summary.skip(static_cast<std::uint32_t>(skey & 7));
      }
    } else {
      r.skip(type);
    }
  }
  for (std::size_t i = first; i < out.size(); ++i) {
    out[i].step = step;
    out[i].wall_time = wall_time;
  }
}

}  // namespace

std::vector<TfScalar> read_tfevents_scalars(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file, std::string("cannot open: ") + std::strerror(errno), "check the path");
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(file, "cannot read", "check the file");

  const std::string todo = "the file is corrupt or not a TensorBoard event file";
  std::vector<TfScalar> out;
  std::size_t pos = 0;
  for (std::size_t record = 0; pos < data.size(); ++record) {
    const std::string where_rec = "record " + std::to_string(record);
    const std::size_t left = data.size() - pos;
    if (left < tfevents::kHeaderBytes)
      fail(file, where_rec + ": truncated header (" + std::to_string(left) + " bytes left)", todo);
    const char* p = data.data() + pos;
    const std::uint64_t len = get_le(p, 8);
    const auto stored_len_crc = static_cast<std::uint32_t>(get_le(p + 8, 4));
    const std::uint32_t len_crc = tfevents::mask_crc(tfevents::crc32c(p, 8));
    if (stored_len_crc != len_crc)
      fail(file, where_rec + ": length CRC mismatch (stored " + hex32(stored_len_crc) + ", computed " +
                     hex32(len_crc) + ")",
           todo);
    const std::size_t body = left - tfevents::kHeaderBytes;
    if (len > body || body - len < tfevents::kFooterBytes)
      fail(file, where_rec + ": truncated (length " + std::to_string(len) + ", " + std::to_string(body) +
                     " bytes left)",
           todo);
    const char* d = p + tfevents::kHeaderBytes;
    const auto stored_crc = static_cast<std::uint32_t>(get_le(d + len, 4));
    const std::uint32_t crc = tfevents::mask_crc(tfevents::crc32c(d, len));
    if (stored_crc != crc)
      fail(file, where_rec + ": data CRC mismatch (stored " + hex32(stored_crc) + ", computed " + hex32(crc) + ")",
           todo);
    parse_event(ProtoReader(std::string_view(d, len), file, record), out);
    pos += tfevents::kHeaderBytes + len + tfevents::kFooterBytes;
  }
  return out;
}

}  // namespace medgpt::util
