// TensorBoard event files: CRC-32C vectors and TFRecord's mask, the exact bytes of a scalar Event
// and of its record, write-then-read round trips, corruption and truncation named by record, and
// (when tests/reference has node and its packages) an independent decoder/encoder: protobufjs and
// crc-32 must read our file and write back the very same bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "util/error.hpp"
#include "util/tfevents.hpp"

using namespace medgpt;
using medgpt::test::error_of;
namespace fs = std::filesystem;
namespace tfe = util::tfevents;

namespace {

// Folders under the system's temp dir, removed when the test process exits.
std::string temp_dir() {
  struct Dirs {
    std::vector<fs::path> made;
    ~Dirs() {
      std::error_code ec;
      for (const auto& p : made) fs::remove_all(p, ec);
    }
  };
  static Dirs dirs;
  const fs::path p = fs::temp_directory_path() /
                     ("medgpt_tfe_" + std::to_string(::getpid()) + "_" + std::to_string(dirs.made.size()));
  fs::remove_all(p);
  fs::create_directories(p);
  dirs.made.push_back(p);
  return p.string();
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string hex(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "%02x ", c);
    out += buf;
  }
  return out;
}

}  // namespace

TEST(TfEvents, Crc32cKnownVectors) {
  // The check value of CRC-32C (Castagnoli) and RFC 3720 (iSCSI) B.4's vectors.
  EXPECT_EQ(tfe::crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(tfe::crc32c("", 0), 0x00000000u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  std::string up, down;
  for (int i = 0; i < 32; ++i) up.push_back(static_cast<char>(i)), down.push_back(static_cast<char>(31 - i));
  EXPECT_EQ(tfe::crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(tfe::crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(tfe::crc32c(up.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(tfe::crc32c(down.data(), 32), 0x113FDB5Cu);
}

TEST(TfEvents, MaskByHand) {
  // crc = 0xE3069283
  //   crc >> 15           = 0x0001C60D
  //   crc << 17 (32 bits) = 0x25060000
  //   or                  = 0x2507C60D
  //   + 0xA282EAD8        = 0xC78AB0E5
  EXPECT_EQ(tfe::mask_crc(0xE3069283u), 0xC78AB0E5u);
  // 0 -> rotation 0, + delta only; and the sum wraps mod 2^32:
  // 0xFFFFFFFF rotates to itself, + 0xA282EAD8 = 0x1A282EAD7 -> 0xA282EAD7.
  EXPECT_EQ(tfe::mask_crc(0u), 0xA282EAD8u);
  EXPECT_EQ(tfe::mask_crc(0xFFFFFFFFu), 0xA282EAD7u);
}

// Event{wall_time: 1610612736.0, step: 7, summary: {value: [{tag: "loss", simple_value: 2.5}]}}
// 1610612736 = 1.5 * 2^30: double exponent 1023 + 30 = 0x41D, mantissa .1000... -> 0x41D8000000000000.
// 2.5f = 1.25 * 2^1: float exponent 127 + 1 = 0x80, mantissa .01 -> 0x40200000.
const std::string kLossEvent = bytes({
    0x09,                                            // field 1 (wall_time), wire type 1 (64-bit)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xD8, 0x41,  //   1610612736.0, little-endian
    0x10,                                            // field 2 (step), wire type 0 (varint)
    0x07,                                            //   7
    0x2A,                                            // field 5 (summary), wire type 2 (bytes)
    0x0D,                                            //   13 bytes of Summary:
    0x0A,                                            //   field 1 (value), wire type 2
    0x0B,                                            //     11 bytes of Value:
    0x0A,                                            //     field 1 (tag), wire type 2
    0x04, 'l', 'o', 's', 's',                        //       4 bytes "loss"
    0x15,                                            //     field 2 (simple_value), wire type 5 (32-bit)
    0x00, 0x00, 0x20, 0x40,                          //       2.5f, little-endian
});

TEST(TfEvents, ScalarEventBytes) {
  EXPECT_EQ(hex(tfe::encode_scalars_event({{"loss", 2.5}}, 7, 1610612736.0)), hex(kLossEvent));
  // Step 0 and wall_time 0 are proto3 defaults: left out. simple_value 0 is a oneof member: kept.
  EXPECT_EQ(hex(tfe::encode_scalars_event({{"x", 0.0}}, 0, 0.0)),
            hex(bytes({0x2A, 0x0A, 0x0A, 0x08, 0x0A, 0x01, 'x', 0x15, 0, 0, 0, 0})));
  // A negative step is an int64 varint of 10 bytes (two's complement); a big one takes 6.
  EXPECT_EQ(hex(tfe::encode_scalars_event({{"x", 1.0}}, -1, 0.0).substr(0, 11)),
            hex(bytes({0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})));
  // 2^40 = 7-bit groups 0,0,0,0,0,0x20 -> 80 80 80 80 80 20
  EXPECT_EQ(hex(tfe::encode_scalars_event({{"x", 1.0}}, std::int64_t{1} << 40, 0.0).substr(0, 7)),
            hex(bytes({0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20})));
}

TEST(TfEvents, FileVersionEventBytes) {
  EXPECT_EQ(hex(tfe::encode_file_version_event(1610612736.0)),
            hex(bytes({0x09, 0, 0, 0, 0, 0, 0, 0xD8, 0x41,  // wall_time
                       0x1A, 0x0D,                          // field 3 (file_version), 13 bytes
                       'b', 'r', 'a', 'i', 'n', '.', 'E', 'v', 'e', 'n', 't', ':', '2'})));
}

TEST(TfEvents, RecordFraming) {
  const std::string rec = tfe::frame_record(kLossEvent);
  ASSERT_EQ(rec.size(), 12 + kLossEvent.size() + 4);
  // uint64 length 26, little-endian
  EXPECT_EQ(hex(rec.substr(0, 8)), hex(bytes({0x1A, 0, 0, 0, 0, 0, 0, 0})));
  // The masked CRCs of the length and of the data, as crc-32's (SheetJS) CRC-32C gives them
  // (node: mask(CRC32C.buf(bytes))), written little-endian.
  const auto le32 = [](std::uint32_t v) { return bytes({int(v & 0xFF), int(v >> 8 & 0xFF), int(v >> 16 & 0xFF), int(v >> 24)}); };
  EXPECT_EQ(hex(rec.substr(8, 4)), hex(le32(0x2DD89B12u)));
  EXPECT_EQ(rec.substr(12, kLossEvent.size()), kLossEvent);
  EXPECT_EQ(hex(rec.substr(12 + kLossEvent.size())), hex(le32(0xF6389DB3u)));
}

namespace {

std::string host() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// Offsets of each record in an event file's bytes.
std::vector<std::size_t> record_offsets(const std::string& data) {
  std::vector<std::size_t> offs;
  for (std::size_t pos = 0; pos + 12 <= data.size();) {
    offs.push_back(pos);
    std::uint64_t len = 0;
    for (int i = 0; i < 8; ++i) len |= std::uint64_t{static_cast<unsigned char>(data[pos + i])} << (8 * i);
    pos += 12 + len + 4;
  }
  return offs;
}

// A file with the header record and four scalar records (records 1..4).
std::string sample_file(const std::string& dir) {
  util::TfEventsWriter w(dir);
  w.scalar("train/loss", 2.5, 1, 1700000000.25);
  w.scalar("train/loss", 0.1, 2, 1700000001.5);
  w.scalars({{"eval/loss", 1.75}, {"eval/ppl", std::exp(1.75)}}, 100, 1700000100.0);
  w.scalar("train/lr", 3e-4, 101, 1700000101.0);
  return w.path();
}

}  // namespace

TEST(TfEvents, WriteThenRead) {
  const std::string dir = temp_dir() + "/run/tb";  // parents created too
  const double t0 = util::unix_time_now();
  std::string path;
  {
    util::TfEventsWriter w(dir);
    path = w.path();
    // The file is valid at once: the file_version record only.
    EXPECT_TRUE(util::read_tfevents_scalars(path).empty());
    w.scalar("train/loss", 2.5, 1, 1700000000.25);
    w.scalar("train/loss", 0.1, 2, 1700000001.5);
    EXPECT_TRUE(util::read_tfevents_scalars(path).empty()) << "buffered until flush()";
    w.flush();
    EXPECT_EQ(util::read_tfevents_scalars(path).size(), 2u);
    w.scalars({{"eval/loss", 1.75}, {"eval/ppl", std::exp(1.75)}}, 100, 1700000100.0);
    w.scalar("neg", -7.0, -3, 1.0);
    w.scalar("nan", std::nan(""), 5, 2.0);
    w.scalar("big", 1e30, std::int64_t{1} << 40);  // wall_time: now
  }  // the destructor flushes
  const double t1 = util::unix_time_now();

  // events.out.tfevents.<unix seconds>.<hostname>, the seconds of when it was made.
  const std::string name = fs::path(path).filename().string();
  const std::string prefix = "events.out.tfevents.";
  ASSERT_EQ(name.rfind(prefix, 0), 0u) << name;
  const std::string seconds = name.substr(prefix.size(), 10);
  EXPECT_EQ(seconds.find_first_not_of("0123456789"), std::string::npos) << name;
  EXPECT_EQ(name.substr(prefix.size() + 10), "." + host()) << name;
  EXPECT_GE(std::stoll(seconds), static_cast<long long>(t0));
  EXPECT_LE(std::stoll(seconds), static_cast<long long>(t1));
  EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir));

  // Record 0: Event{wall_time: now, file_version: "brain.Event:2"}.
  const std::string data = slurp(path);
  ASSERT_EQ(record_offsets(data).size(), 7u);
  const std::string v = "brain.Event:2";
  ASSERT_GE(data.size(), 12u + 9 + 2 + v.size() + 4);
  EXPECT_EQ(data[12], '\x09');
  double wall;
  std::memcpy(&wall, data.data() + 13, 8);
  EXPECT_GE(wall, t0);
  EXPECT_LE(wall, t1);
  EXPECT_EQ(data.substr(12 + 9, 2 + v.size()), "\x1A\x0D" + v);

  const auto got = util::read_tfevents_scalars(path);
  ASSERT_EQ(got.size(), 7u);
  const struct {
    const char* tag;
    float value;
    std::int64_t step;
    double wall_time;
  } want[] = {{"train/loss", 2.5f, 1, 1700000000.25},   {"train/loss", 0.1f, 2, 1700000001.5},
              {"eval/loss", 1.75f, 100, 1700000100.0},  {"eval/ppl", float(std::exp(1.75)), 100, 1700000100.0},
              {"neg", -7.0f, -3, 1.0}};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(got[i].tag, want[i].tag) << i;
    EXPECT_EQ(got[i].value, want[i].value) << i;
    EXPECT_EQ(got[i].step, want[i].step) << i;
    EXPECT_EQ(got[i].wall_time, want[i].wall_time) << i;
  }
  EXPECT_EQ(got[5].tag, "nan");
  EXPECT_TRUE(std::isnan(got[5].value));
  EXPECT_EQ(got[6].tag, "big");
  EXPECT_EQ(got[6].value, 1e30f);
  EXPECT_EQ(got[6].step, std::int64_t{1} << 40);
  EXPECT_GE(got[6].wall_time, t0);
  EXPECT_LE(got[6].wall_time, t1);
}

TEST(TfEvents, ResumedRunMakesANewFile) {
  const std::string dir = temp_dir();
  const std::string a = sample_file(dir);
  const std::string b = sample_file(dir);  // very likely the same second: a suffixed name
  EXPECT_NE(a, b);
  const auto files = event_files(dir);
  ASSERT_EQ(files.size(), 2u);
  for (const auto& f : files) {
    EXPECT_EQ(fs::path(f).filename().string().rfind("events.out.tfevents.", 0), 0u) << f;
    EXPECT_EQ(util::read_tfevents_scalars(f).size(), 5u) << f;
  }
}

TEST(TfEvents, CorruptionNamesFileAndRecord) {
  const std::string dir = temp_dir();
  const std::string path = sample_file(dir);
  const std::string good = slurp(path);
  const auto offs = record_offsets(good);
  ASSERT_EQ(offs.size(), 5u);

  std::string bad = good;
  bad[offs[2] + 12 + 3] ^= 0x01;  // a bit of record 2's data
  spit(path, bad);
  std::string e = error_of([&] { util::read_tfevents_scalars(path); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("record 2: data CRC mismatch"), std::string::npos) << e;

  bad = good;
  bad[offs[1]] ^= 0x40;  // record 1's length
  spit(path, bad);
  e = error_of([&] { util::read_tfevents_scalars(path); });
  EXPECT_NE(e.find("record 1: length CRC mismatch"), std::string::npos) << e;

  bad = good;
  bad[offs[4] - 1] ^= 0x80;  // the stored data CRC of record 3
  spit(path, bad);
  e = error_of([&] { util::read_tfevents_scalars(path); });
  EXPECT_NE(e.find("record 3: data CRC mismatch"), std::string::npos) << e;

  spit(path, good.substr(0, good.size() - 3));  // a record cut short (a writer killed mid-write)
  e = error_of([&] { util::read_tfevents_scalars(path); });
  EXPECT_NE(e.find("record 4: truncated"), std::string::npos) << e;
  spit(path, good.substr(0, offs[4] + 5));
  e = error_of([&] { util::read_tfevents_scalars(path); });
  EXPECT_NE(e.find("record 4: truncated header"), std::string::npos) << e;

  // Good CRCs around a broken protobuf: the summary's length runs past the event.
  spit(path, good + tfe::frame_record(bytes({0x2A, 0x10, 0x0A})));
  e = error_of([&] { util::read_tfevents_scalars(path); });
  EXPECT_NE(e.find("record 5: malformed Event protobuf"), std::string::npos) << e;

  spit(path, good);
  EXPECT_EQ(util::read_tfevents_scalars(path).size(), 5u);
}

TEST(TfEvents, ReaderSkipsWhatIsNotAScalar) {
  const std::string path = temp_dir() + "/events.out.tfevents.0.x";
  // Event{step: 3, graph_def (field 4): "xy", summary: {value: [{tag: "h", histo (field 5): ""},
  //                                                             {tag: "s", simple_value: 1.0}]},
  //       source_metadata (field 10, varint 1)}
  const std::string ev = bytes({0x10, 0x03, 0x22, 0x02, 'x', 'y', 0x2A, 0x11,  //
                                0x0A, 0x05, 0x0A, 0x01, 'h', 0x2A, 0x00,        //
                                0x0A, 0x08, 0x0A, 0x01, 's', 0x15, 0x00, 0x00, 0x80, 0x3F, 0x50, 0x01});
  spit(path, tfe::frame_record(tfe::encode_file_version_event(1.0)) + tfe::frame_record(ev));
  const auto got = util::read_tfevents_scalars(path);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].tag, "s");
  EXPECT_EQ(got[0].value, 1.0f);
  EXPECT_EQ(got[0].step, 3);
}

TEST(TfEvents, Errors) {
  const std::string dir = temp_dir();
  std::string e = error_of([&] { util::read_tfevents_scalars(dir + "/nope"); });
  EXPECT_NE(e.find(dir + "/nope: cannot open"), std::string::npos) << e;

  spit(dir + "/file", "x");
  e = error_of([&] { util::TfEventsWriter w(dir + "/file/tb"); });
  EXPECT_NE(e.find(dir + "/file/tb: cannot create the TensorBoard folder"), std::string::npos) << e;

  util::TfEventsWriter w(dir + "/tb");
  e = error_of([&] { w.scalar("", 1.0, 1); });
  EXPECT_NE(e.find("needs a tag"), std::string::npos) << e;
}

// ---- an independent implementation: protobufjs + crc-32 (tests/reference/tfevents.mjs) ----
TEST(TfEvents, ReferenceDecoderAndEncoderAgree) {
  const std::string ref = std::string(MEDGPT_SOURCE_DIR) + "/tests/reference";
  if (std::system("command -v node > /dev/null 2>&1") != 0 || !fs::exists(ref + "/node_modules/protobufjs") ||
      !fs::exists(ref + "/node_modules/crc-32"))
    GTEST_SKIP() << "node or tests/reference/node_modules/{protobufjs,crc-32} missing: run tools/setup.sh";

  const std::string dir = temp_dir();
  const double t0 = util::unix_time_now();
  std::string path;
  {
    util::TfEventsWriter w(dir + "/tb");
    path = w.path();
    w.scalar("train/loss", 2.5, 1, 1700000000.25);
    w.scalar("train/loss", 0.1, 2, 1700000001.5);
    w.scalars({{"eval/loss", 1.75}, {"eval/ppl", std::exp(1.75)}}, 100, 1700000100.0);
    w.scalar("train/lr", 3e-4, std::int64_t{1} << 40, 1700000101.0);
    w.scalar("neg", -1e-20, -3, 0.5);
    w.scalar("zero", 0.0, 0);  // step 0 left out; wall_time now
    w.scalar("医学/损失", 1e30, 7, 1700000102.0);
  }
  const double t1 = util::unix_time_now();

  const std::string decoded = dir + "/decoded.jsonl", again = dir + "/again.tfevents", err = dir + "/err";
  ASSERT_EQ(std::system(("node '" + ref + "/tfevents.mjs' decode '" + path + "' > '" + decoded + "' 2> '" + err + "'").c_str()), 0)
      << slurp(err);
  std::vector<nlohmann::json> rec;
  {
    std::ifstream in(decoded);
    for (std::string line; std::getline(in, line);) rec.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(rec.size(), 8u) << slurp(decoded);
  EXPECT_EQ(rec[0]["file_version"], "brain.Event:2");
  EXPECT_GE(rec[0]["wall_time"].get<double>(), t0);
  EXPECT_LE(rec[0]["wall_time"].get<double>(), t1);
  EXPECT_FALSE(rec[0].contains("step"));

  const auto ours = util::read_tfevents_scalars(path);
  ASSERT_EQ(ours.size(), 8u);
  std::size_t k = 0;
  for (std::size_t r = 1; r < rec.size(); ++r) {
    const auto& j = rec[r];
    for (const auto& v : j["values"]) {
      ASSERT_LT(k, ours.size());
      EXPECT_EQ(v["tag"].get<std::string>(), ours[k].tag) << j.dump();
      EXPECT_EQ(static_cast<float>(v["simple_value"].get<double>()), ours[k].value) << j.dump();
      EXPECT_EQ(j.contains("step") ? std::stoll(j["step"].get<std::string>()) : 0, ours[k].step) << j.dump();
      EXPECT_EQ(j.value("wall_time", 0.0), ours[k].wall_time) << j.dump();
      ++k;
    }
  }
  EXPECT_EQ(k, ours.size());
  EXPECT_EQ(ours[5].step, -3);
  EXPECT_EQ(ours[6].step, 0);
  EXPECT_EQ(ours[7].tag, "医学/损失");

  // protobufjs re-encodes the decoded events, crc-32 frames them: the very same bytes.
  ASSERT_EQ(std::system(("node '" + ref + "/tfevents.mjs' encode '" + again + "' < '" + decoded + "' 2> '" + err + "'").c_str()), 0)
      << slurp(err);
  EXPECT_EQ(hex(slurp(again)), hex(slurp(path)));

  // And the reference's own CRC check sees a flipped bit.
  std::string bad = slurp(path);
  bad[bad.size() - 6] ^= 0x04;
  spit(again, bad);
  EXPECT_NE(std::system(("node '" + ref + "/tfevents.mjs' decode '" + again + "' > /dev/null 2> '" + err + "'").c_str()), 0);
  EXPECT_NE(slurp(err).find("record 7: data CRC mismatch"), std::string::npos) << slurp(err);
}
