// medgpt's model checkpoint (DESIGN §5): a directory holding one HDF5 file per (tp, pp) shard,
// each tensor stored raw (bit-exact; bf16/f16 as 16-bit words) with its full logical shape and
// this shard's offsets, plus meta.json, the model's config/tokenizer files, and COMMITTED, written
// last: a directory without it is ignored as half-written.
#pragma once

#include <string>
#include <vector>

#include "model/config.hpp"
#include "model/safetensors.hpp"

namespace medgpt::model {

struct ShardLayout {
  int tp_rank = 0, tp_size = 1, pp_rank = 0, pp_size = 1;
};

// The shard file name inside a checkpoint directory: model-tp00-of-02-pp00-of-01.h5.
std::string shard_file(const ShardLayout& l);

// Writes one rank's shard. `logical` gives each tensor's full shape and `offsets` where this
// shard starts in it (same order as `tensors`).
void write_model_shard(const std::string& dir, const ShardLayout& l, const NamedTensors& tensors,
                       const std::vector<std::vector<std::int64_t>>& logical, const std::vector<std::vector<std::int64_t>>& offsets);

// Whole tensors reassembled from every shard file of a committed checkpoint, in name order.
// util::Error names the file and tensor on anything missing or inconsistent.
NamedTensors read_model_full(const std::string& dir);

bool is_committed(const std::string& dir);
// The weights of a model folder: a medgpt checkpoint (meta.json + COMMITTED) or a Hugging Face
// folder (*.safetensors).
NamedTensors read_model_weights(const std::string& dir);
// meta.json + COMMITTED (after every shard is written).
void commit_checkpoint(const std::string& dir, const ShardLayout& world_layout, const std::string& dtype);

// Files of a Hugging Face folder carried along with the weights.
extern const char* const kModelSideFiles[];
void copy_side_files(const std::string& from, const std::string& to);

}  // namespace medgpt::model
