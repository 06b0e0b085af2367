#include "model/safetensors_header.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace medgpt::model {

namespace {
constexpr std::uint64_t kMaxHeader = 100'000'000;  // the reference reader's limit
}  // namespace

int safetensors_dtype_bytes(const std::string& dtype) {
  static const std::pair<const char*, int> kBytes[] = {{"F64", 8}, {"I64", 8}, {"F32", 4}, {"I32", 4}, {"BF16", 2},
                                                       {"F16", 2}, {"I16", 2}, {"U8", 1},  {"I8", 1},  {"BOOL", 1}};
  for (const auto& [name, bytes] : kBytes)
    if (dtype == name) return bytes;
  return 0;
}

SafetensorsHeader parse_safetensors_header(std::string_view bytes, const std::string& path) {
  if (bytes.size() < 8) util::fail(path, "truncated: shorter than the 8-byte header length", "re-download or re-export the file");
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);  // little-endian on every platform we build for
  if (n > kMaxHeader || 8 + n > bytes.size())
    util::fail(path, "header length " + std::to_string(n) + " runs past the end of the " + std::to_string(bytes.size()) + "-byte file",
               "the file is truncated or not safetensors; re-download it");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, n));
  } catch (const nlohmann::json::exception& e) {  // also out_of_range: a number past a double
    util::fail(path, std::string("header is not valid JSON: ") + e.what(), "re-download or re-export the file");
  }
  if (!header.is_object()) util::fail(path, "header is not a JSON object", "re-download or re-export the file");
  SafetensorsHeader h;
  h.data_start = 8 + n;
  const std::uint64_t data_len = bytes.size() - h.data_start;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (v.is_object())
        for (const auto& [k, s] : v.items())
          if (s.is_string()) h.metadata[k] = s.get<std::string>();
      continue;
    }
    const std::string where = path + ": " + name;
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      util::fail(where, "entry needs dtype, shape and data_offsets", "the file is not valid safetensors");
    SafetensorsEntry e;
    e.name = name;
    e.dtype = v["dtype"].is_string() ? v["dtype"].get<std::string>() : "";
    const int width = safetensors_dtype_bytes(e.dtype);
    if (width == 0) util::fail(where, "unknown or unsupported dtype " + v["dtype"].dump(), "medgpt reads F64 F32 BF16 F16 I64 I32 I16 U8 I8 BOOL");
    const nlohmann::json& shape = v["shape"];
    if (!shape.is_array()) util::fail(where, "bad shape " + shape.dump(), "the file is corrupt");
    // The element count must not overflow: it is checked against the byte range below.
    std::uint64_t elems = 1;
    for (const auto& d : shape) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 0) util::fail(where, "bad shape " + shape.dump(), "the file is corrupt");
      const auto extent = static_cast<std::uint64_t>(d.get<std::int64_t>());
      if (extent != 0 && elems > data_len / extent) elems = std::numeric_limits<std::uint64_t>::max();  // more than the file holds
      else elems *= extent;
      e.shape.push_back(d.get<std::int64_t>());
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      util::fail(where, "bad data_offsets " + off.dump(), "the file is corrupt");
    e.begin = off[0].get<std::uint64_t>();
    e.end = off[1].get<std::uint64_t>();
    const bool fits = elems <= data_len / static_cast<std::uint64_t>(width);
    if (e.end < e.begin || !fits || e.end - e.begin != elems * static_cast<std::uint64_t>(width))
      util::fail(where, "data_offsets " + off.dump() + " do not hold the " + shape.dump() + " " + e.dtype + " values", "the file is corrupt");
    h.entries.push_back(std::move(e));
  }
  // The data section must be exactly covered: sorted by offset, no holes, no overlap.
  std::sort(h.entries.begin(), h.entries.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t expect = 0;
  for (const SafetensorsEntry& e : h.entries) {
    if (e.begin != expect) util::fail(path + ": " + e.name, "data_offsets leave a hole or overlap another tensor", "the file is corrupt");
    expect = e.end;
  }
  if (expect != data_len)
    util::fail(path, "tensor data ends at byte " + std::to_string(h.data_start + expect) + " but the file has " + std::to_string(bytes.size()),
               "the file is truncated or corrupt; re-download it");
  return h;
}

}  // namespace medgpt::model
