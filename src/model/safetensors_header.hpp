// The header of a safetensors file, parsed and checked without LibTorch: 8 bytes of header length
// (little-endian), a JSON object of {name: {dtype, shape, data_offsets}} (+ "__metadata__"), then
// the tensor bytes, which the entries must cover exactly (no hole, no overlap, nothing after).
// Every violation is a util::Error naming the file and the entry.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace medgpt::model {

struct SafetensorsEntry {
  std::string name, dtype;  // dtype: "F32", "BF16", ...
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte range within the data section
};

struct SafetensorsHeader {
  std::uint64_t data_start = 0;           // 8 + header length
  std::vector<SafetensorsEntry> entries;  // in data order
  std::map<std::string, std::string> metadata;
};

// Bytes per element of a safetensors dtype name medgpt reads, or 0.
int safetensors_dtype_bytes(const std::string& dtype);

// `bytes` is the whole file; `path` names it in errors.
SafetensorsHeader parse_safetensors_header(std::string_view bytes, const std::string& path);

}  // namespace medgpt::model
