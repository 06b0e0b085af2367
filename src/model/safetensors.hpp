// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the packed tensor bytes.
// Reading maps the file and validates the header as the reference does; writing follows the
// reference layout (dtype alignment descending, then name; header padded with spaces to 8 bytes).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace medgpt::model {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// All tensors of one .safetensors file, as owned CPU tensors, in file order. util::Error names the
// file and tensor on anything malformed (truncated file, header beyond the file, unknown dtype,
// overlapping or missing bytes).
NamedTensors read_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// A model folder's weights: model.safetensors, or the shards listed in model.safetensors.index.json.
NamedTensors read_safetensors_dir(const std::string& dir);

// Each tensor's values, asked for just before they are written: with it, `tensors` may be meta
// tensors (names, shapes, dtypes only), so no more than one tensor is in memory at a time.
using TensorLoader = std::function<at::Tensor(const std::string& name)>;

// Writes one file with __metadata__ {"format": "pt"} (plus `metadata`).
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {}, const TensorLoader& load = {});

// Writes model.safetensors, or model-0000i-of-0000n.safetensors + model.safetensors.index.json when
// the tensors exceed max_shard_bytes (huggingface_hub's sharding rule).
void write_safetensors_dir(const std::string& dir, const NamedTensors& tensors, std::int64_t max_shard_bytes = 5'000'000'000,
                           const TensorLoader& load = {});

const char* safetensors_dtype(at::ScalarType t);

}  // namespace medgpt::model
