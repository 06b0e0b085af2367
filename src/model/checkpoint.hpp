// medgpt's model checkpoint (DESIGN §5): a directory holding one HDF5 file per (tp, pp) shard,
// each tensor stored raw (bit-exact; bf16/f16 as 16-bit words) with its full logical shape and
// this shard's offsets, plus meta.json, the model's config/tokenizer files, and COMMITTED, written
// last: a directory without it is ignored as half-written.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/config.hpp"
#include "model/safetensors.hpp"
#include "util/h5.hpp"

namespace medgpt::model {

struct ShardLayout {
  int tp_rank = 0, tp_size = 1, pp_rank = 0, pp_size = 1;
};

// The shard file name inside a checkpoint directory: model-tp00-of-02-pp00-of-01.h5.
std::string shard_file(const ShardLayout& l);

// Writes one rank's shard file tensor by tensor (ZeRO-3 gathers each just before it is written,
// so the whole shard is never in memory), into a .tmp renamed by close().
class ModelShardWriter {
 public:
  ModelShardWriter(const std::string& dir, const ShardLayout& l);
  // `logical`: the tensor's full shape; `offset`: where this shard's block starts in it.
  void add(const std::string& name, const at::Tensor& t, const std::vector<std::int64_t>& logical, const std::vector<std::int64_t>& offset);
  void close();

 private:
  std::string path_, tmp_;
  std::optional<util::H5File> file_;
};

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

// "bfloat16" / "float16" / "float32": the dtype of the first floating tensor, as config.json names it.
std::string hf_dtype_label(const NamedTensors& tensors);
// Records `label` as DIR/config.json's torch_dtype (and dtype, when present), where transformers looks.
void set_config_dtype(const std::string& dir, const std::string& label);

// A committed checkpoint as a Hugging Face folder: model.safetensors (sharded above
// `max_shard_bytes`), config.json (torch_dtype set when `dtype` converts the floating tensors) and
// the side files. Tied embeddings are written once, as transformers saves them.
void export_hf(const std::string& checkpoint, const std::string& out, std::optional<at::ScalarType> dtype, std::int64_t max_shard_bytes);

// Files of a Hugging Face folder carried along with the weights: the tokenizer's, and with them
// config.json and generation_config.json (the side files). Missing ones are skipped.
extern const char* const kTokenizerFiles[];
void copy_tokenizer_files(const std::string& from, const std::string& to);
void copy_side_files(const std::string& from, const std::string& to);

}  // namespace medgpt::model
