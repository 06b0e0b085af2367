// TensorBoard event files for scalar metrics, written without TensorFlow or protobuf.
//
// A file is a sequence of TFRecords:
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
// with mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8, each record's data a serialized
// tensorflow.Event:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }   (simple_value is in a oneof: always written)
// The first record is Event{wall_time, file_version: "brain.Event:2"}. Fields are encoded as
// protobuf's own serializer does for proto3 (zero wall_time/step left out, fields in number order).
//
// One writer per process that logs (rank 0). A resumed run makes a new file in the same folder;
// TensorBoard reads every events.out.tfevents.* file of a folder as one run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace medgpt::util {

// Seconds since the Unix epoch, with sub-second precision (the Event.wall_time convention).
double unix_time_now();

class TfEventsWriter {
 public:
  // Creates `dir` (and parents) and a new file events.out.tfevents.<unix seconds>.<hostname>
  // in it (".1", ".2", ... appended if that name is taken), and writes the file_version record.
  // util::Error naming the folder or file when either cannot be created or written.
  explicit TfEventsWriter(const std::string& dir);
  // Flushes; errors are swallowed here (call flush() to see them).
  ~TfEventsWriter();
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  // One Event holding one scalar (stored as a float, as TensorBoard's simple_value is).
  // Buffered: reaches the file on flush(), when the buffer passes 1 MiB, or on destruction.
  void scalar(const std::string& tag, double value, std::int64_t step, double wall_time = unix_time_now());
  // One Event holding several scalars of the same step.
  void scalars(const std::vector<std::pair<std::string, double>>& values, std::int64_t step,
               double wall_time = unix_time_now());
  // Writes what is buffered to the file (no fsync). util::Error naming the file on failure.
  void flush();

  const std::string& path() const { return path_; }

 private:
  void append(const std::string& event_bytes);

  std::string path_;
  int fd_ = -1;
  std::string buffer_;
};

// A scalar read back from an event file.
struct TfScalar {
  std::string tag;
  float value = 0;
  std::int64_t step = 0;
  double wall_time = 0;
};

// Every simple_value scalar in an event file, in file order (an Event with several values gives
// several entries). Checks both CRCs of every record and the protobuf framing: util::Error naming
// the file and the record index (0 = the file_version record) on a mismatch or a truncated record.
std::vector<TfScalar> read_tfevents_scalars(const std::string& file);

// ---- the pieces, exposed for tests ----
namespace tfevents {

// CRC-32C (Castagnoli, reflected, init and final xor 0xFFFFFFFF): crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t size);
// TFRecord's mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32).
std::uint32_t mask_crc(std::uint32_t crc);
// The serialized Event of one Summary with the given scalars (the bytes of a record's data).
std::string encode_scalars_event(const std::vector<std::pair<std::string, double>>& values, std::int64_t step,
                                 double wall_time);
// The serialized Event{wall_time, file_version}.
std::string encode_file_version_event(double wall_time, const std::string& file_version = "brain.Event:2");
// One TFRecord around `data`: length, masked CRC of the length, data, masked CRC of the data.
std::string frame_record(const std::string& data);

}  // namespace tfevents

}  // namespace medgpt::util
