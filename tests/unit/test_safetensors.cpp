// safetensors: round trips (every dtype in use, sharded folders), the reference's header layout,
// and one clear error for each kind of broken file.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "error_of.hpp"
#include "model/safetensors.hpp"
#include "util/error.hpp"
#include "util/json.hpp"

using namespace medgpt;
using medgpt::test::error_of;
namespace fs = std::filesystem;

namespace {

std::string temp_dir() {
  static int n = 0;
  const fs::path p = fs::temp_directory_path() / ("medgpt_st_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  fs::create_directories(p);
  return p.string();
}

model::NamedTensors sample() {
  return {{"b.weight", at::arange(12, at::kFloat).view({3, 4}) / 7},
          {"a.bf16", at::linspace(-2, 2, 10, at::kFloat).to(at::kBFloat16)},
          {"c.f16", at::linspace(-1, 1, 6, at::kFloat).to(at::kHalf).view({2, 3})},
          {"d.ids", at::arange(5, at::kLong) * 1000003},
          {"e.scalar", at::full({}, 3.5, at::kFloat)}};
}

void expect_same(const model::NamedTensors& a, const model::NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  std::map<std::string, at::Tensor> mb(b.begin(), b.end());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(mb.count(name)) << name;
    EXPECT_EQ(t.scalar_type(), mb[name].scalar_type()) << name;
    EXPECT_TRUE(t.equal(mb[name])) << name;
  }
}

}  // namespace

TEST(Safetensors, RoundTripAndReferenceLayout) {
  const std::string path = temp_dir() + "/x.safetensors";
  model::write_safetensors(path, sample());
  std::map<std::string, std::string> meta;
  expect_same(model::read_safetensors(path, &meta), sample());
  EXPECT_EQ(meta.at("format"), "pt");
  // Header: 8-byte aligned, __metadata__ first, then by dtype size (I64, F32, BF16, F16), then name.
  std::ifstream in(path, std::ios::binary);
  std::uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  const auto j = nlohmann::ordered_json::parse(header);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"__metadata__", "d.ids", "b.weight", "e.scalar", "a.bf16", "c.f16"}));
  EXPECT_EQ(j["d.ids"]["data_offsets"], nlohmann::ordered_json::parse("[0, 40]"));
}

TEST(Safetensors, ShardedFolder) {
  const std::string dir = temp_dir();
  model::write_safetensors_dir(dir, sample(), /*max_shard_bytes=*/48);
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  const auto index = util::read_json_file(dir + "/model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"].get<std::int64_t>(), 48 + 20 + 12 + 40 + 4);
  EXPECT_EQ(index["weight_map"]["b.weight"], "model-00001-of-00003.safetensors");
  expect_same(model::read_safetensors_dir(dir), sample());
  const std::string single = temp_dir();
  model::write_safetensors_dir(single, sample());
  EXPECT_TRUE(fs::exists(single + "/model.safetensors"));
  expect_same(model::read_safetensors_dir(single), sample());
}

TEST(Safetensors, BrokenFilesNameTheProblem) {
  const std::string dir = temp_dir(), good = dir + "/good.safetensors";
  model::write_safetensors(good, sample());
  std::string bytes = util::read_file(good);
  auto write = [&](const std::string& name, const std::string& b) {
    std::ofstream(dir + "/" + name, std::ios::binary) << b;
    return dir + "/" + name;
  };
  const std::string truncated = write("truncated.safetensors", bytes.substr(0, bytes.size() - 3));
  EXPECT_NE(error_of([&] { model::read_safetensors(truncated); }).find("truncated.safetensors: tensor data ends at byte"), std::string::npos);
  std::string long_header = bytes;
  const std::uint64_t huge = bytes.size();
  std::memcpy(long_header.data(), &huge, 8);
  const std::string beyond = write("beyond.safetensors", long_header);
  EXPECT_NE(error_of([&] { model::read_safetensors(beyond); }).find("beyond.safetensors: header length"), std::string::npos);
  std::string bad_dtype = bytes;
  bad_dtype.replace(bad_dtype.find("\"F16\""), 5, "\"Q16\"");
  const std::string unknown = write("dtype.safetensors", bad_dtype);
  EXPECT_NE(error_of([&] { model::read_safetensors(unknown); }).find("dtype.safetensors: c.f16: unknown or unsupported dtype \"Q16\""),
            std::string::npos);
  const std::string tiny = write("tiny.safetensors", "abc");
  EXPECT_NE(error_of([&] { model::read_safetensors(tiny); }).find("tiny.safetensors: truncated"), std::string::npos);
  EXPECT_NE(error_of([&] { model::read_safetensors(dir + "/absent.safetensors"); }).find("absent.safetensors: cannot open"), std::string::npos);
}
