#include "model/checkpoint.hpp"

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "model/commit_marker.hpp"
#include "model/h5_dtype.hpp"
#include "model/shard_index.hpp"
#include "model/transformer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/h5.hpp"
#include "util/json.hpp"

namespace medgpt::model {

namespace fs = std::filesystem;

const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                                       "added_tokens.json", "tokenizer.model", "chat_template.jinja", "chat_template.json", nullptr};

namespace {

constexpr int kFormatVersion = 1;

}  // namespace

std::string shard_file(const ShardLayout& l) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-tp%02d-of-%02d-pp%02d-of-%02d.h5", l.tp_rank, l.tp_size, l.pp_rank, l.pp_size);
  return buf;
}

ModelShardWriter::ModelShardWriter(const std::string& dir, const ShardLayout& l) {
  fs::create_directories(dir);
  path_ = dir + "/" + shard_file(l);
  tmp_ = path_ + ".tmp";
  file_.emplace(util::H5File::create(tmp_));
  file_->set_attr("", "format", "medgpt-model");
  file_->set_attr("", "layout", std::vector<std::int64_t>{kFormatVersion, l.tp_rank, l.tp_size, l.pp_rank, l.pp_size});
}

void ModelShardWriter::add(const std::string& name, const at::Tensor& t0, const std::vector<std::int64_t>& logical,
                           const std::vector<std::int64_t>& offset) {
  const at::Tensor t = t0.contiguous().cpu();
  std::vector<std::uint64_t> dims(t.sizes().begin(), t.sizes().end());
  file_->write(name, h5_type(t.scalar_type()), dims, t.data_ptr());
  file_->set_attr(name, "dtype", dtype_name(t.scalar_type()));
  file_->set_attr(name, "logical_shape", logical);
  file_->set_attr(name, "offset", offset);
}

void ModelShardWriter::close() {
  file_->close();
  file_.reset();
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) util::fail(path_, "cannot rename the finished shard: " + ec.message(), "check permissions");
}

void write_model_shard(const std::string& dir, const ShardLayout& l, const NamedTensors& tensors,
                       const std::vector<std::vector<std::int64_t>>& logical, const std::vector<std::vector<std::int64_t>>& offsets) {
  ModelShardWriter w(dir, l);
  for (std::size_t i = 0; i < tensors.size(); ++i) w.add(tensors[i].first, tensors[i].second, logical[i], offsets[i]);
  w.close();
}

bool is_committed(const std::string& dir) { return fs::exists(dir + "/COMMITTED"); }

NamedTensors read_model_weights(const std::string& dir) {
  if (fs::exists(dir + "/meta.json") && is_committed(dir)) return read_model_full(dir);
  return read_safetensors_dir(dir);
}

void commit_checkpoint(const std::string& dir, const ShardLayout& world_layout, const std::string& dtype) {
  nlohmann::ordered_json meta;
  meta["format_version"] = kFormatVersion;
  meta["kind"] = "medgpt-checkpoint";
  meta["tp"] = world_layout.tp_size;
  meta["pp"] = world_layout.pp_size;
  meta["dtype"] = dtype;
  util::write_file_atomic(dir + "/meta.json", meta.dump(2) + "\n");
  write_commit_marker(dir, digest_folder(dir));
}

namespace {

// A committed checkpoint's (tp, pp) from its meta.json, after checking the folder.
std::pair<int, int> checkpoint_layout(const std::string& dir) {
  if (!fs::is_directory(dir)) util::fail(dir, "no such checkpoint folder", "pass a folder written by medgpt import or medgpt train");
  if (!is_committed(dir)) util::fail(dir, "checkpoint has no COMMITTED marker (half-written)", "use an older, committed checkpoint");
  const nlohmann::json meta = util::read_json_file(dir + "/meta.json");
  if (meta.value("format_version", 0) != kFormatVersion)
    util::fail(dir + "/meta.json: format_version", "is " + meta.value("format_version", nlohmann::json(nullptr)).dump() + ", expected 1",
               "use the medgpt that wrote the checkpoint");
  return {meta.value("tp", 1), meta.value("pp", 1)};
}

}  // namespace

NamedTensors read_model_full(const std::string& dir) {
  const auto [tp, pp] = checkpoint_layout(dir);
  struct Whole {
    at::Tensor t;
    std::int64_t filled = 0;
    std::set<std::vector<std::int64_t>> parts;  // offsets of the parts read (a part stored twice: once)
  };
  std::map<std::string, Whole> whole;
  for (int p = 0; p < pp; ++p)
    for (int r = 0; r < tp; ++r) {
      const std::string path = dir + "/" + shard_file({r, tp, p, pp});
      const util::H5File f = util::H5File::open(path);
      if (f.attr_string("", "format") != "medgpt-model") util::fail(path, "not a medgpt model shard", "check the checkpoint folder");
      for (const auto& name : f.datasets()) {
        const std::string where = path + ": " + name;
        const at::ScalarType dt = dtype_named(f.attr_string(name, "dtype"), where);
        const auto logical = f.attr_ints(name, "logical_shape"), offset = f.attr_ints(name, "offset");
        const auto dims = f.dims(name);
        std::vector<std::int64_t> shape(dims.begin(), dims.end());
        at::Tensor part = at::empty(shape, at::TensorOptions().dtype(dt));
        f.read(name, h5_type(dt), part.data_ptr());
        if (logical.size() != shape.size() || offset.size() != shape.size())
          util::fail(where, "logical_shape/offset do not match the stored rank", "the checkpoint is damaged");
        Whole& w = whole[name];
        if (!w.t.defined()) w.t = at::empty(logical, at::TensorOptions().dtype(dt));
        else if (w.t.sizes() != at::IntArrayRef(logical) || w.t.scalar_type() != dt)
          util::fail(where, "disagrees with another shard on shape or dtype", "the checkpoint is damaged");
        at::Tensor view = w.t;
        for (std::size_t d = 0; d < shape.size(); ++d) {
          if (offset[d] < 0 || offset[d] + shape[d] > logical[d]) util::fail(where, "offset outside the logical shape", "the checkpoint is damaged");
          view = view.narrow(static_cast<std::int64_t>(d), offset[d], shape[d]);
        }
        // Replicated tensors are stored by every tp rank, a tied embedding by the first and the last
        // pipeline stage: the copies must agree.
        if (!w.parts.insert(std::vector<std::int64_t>(offset.begin(), offset.end())).second) {
          if (!view.equal(part)) util::fail(where, "copies of the same part differ between shards", "the checkpoint is damaged");
          continue;
        }
        view.copy_(part);
        w.filled += part.numel();
      }
    }
  NamedTensors out;
  for (auto& [name, w] : whole) {
    if (w.filled != w.t.numel())
      util::fail(dir + ": " + name, "shards cover " + std::to_string(w.filled) + " of " + std::to_string(w.t.numel()) + " elements",
                 "a shard file is missing; the checkpoint is incomplete");
    out.emplace_back(name, std::move(w.t));
  }
  return out;
}

std::string hf_dtype_label(const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors)
    if (t.is_floating_point()) return t.scalar_type() == at::kBFloat16 ? "bfloat16" : t.scalar_type() == at::kHalf ? "float16" : "float32";
  return "float32";
}

void set_config_dtype(const std::string& dir, const std::string& label) {
  nlohmann::ordered_json c = nlohmann::ordered_json::parse(util::read_file(dir + "/config.json"));
  if (c.contains("dtype")) c["dtype"] = label;
  c["torch_dtype"] = label;
  util::write_file_atomic(dir + "/config.json", c.dump(2) + "\n");
}

void export_hf(const std::string& checkpoint, const std::string& out, std::optional<at::ScalarType> dtype, std::int64_t max_shard_bytes) {
  const ModelConfig config = ModelConfig::load(checkpoint);
  // One tensor in memory at a time: the index first (names, shapes, dtypes), each tensor read whole
  // from its shards as the safetensors writer reaches it.
  const auto [tp, pp] = checkpoint_layout(checkpoint);
  std::vector<std::string> files;
  for (int p = 0; p < pp; ++p)
    for (int r = 0; r < tp; ++r) files.push_back(shard_file({r, tp, p, pp}));
  const ShardIndex index = ShardIndex::scan(checkpoint, files, "");
  NamedTensors shapes;  // meta tensors in the output dtype
  for (const std::string& name : index.names()) {
    const at::ScalarType stored = dtype_named(index.pieces(name).front().dtype, checkpoint + ": " + name);
    const at::ScalarType want = dtype && at::isFloatingType(stored) ? *dtype : stored;
    shapes.emplace_back(name, at::empty(index.logical_shape(name), at::TensorOptions().dtype(want).device(at::kMeta)));
  }
  validate_weights(config, shapes, checkpoint);
  std::map<std::string, at::ScalarType> want;
  for (const auto& [name, t] : shapes) want[name] = t.scalar_type();
  fs::create_directories(out);
  write_safetensors_dir(out, shapes, max_shard_bytes, [&](const std::string& name) {
    const std::vector<std::int64_t>& logical = index.logical_shape(name);
    return index.read_block(name, std::vector<std::int64_t>(logical.size(), 0), logical).view(logical).to(want.at(name));
  });
  copy_side_files(checkpoint, out);
  if (dtype) set_config_dtype(out, hf_dtype_label(shapes));
}

namespace {
void copy_if_there(const std::string& from, const std::string& to, const char* name) {
  const fs::path src = fs::path(from) / name;
  if (fs::exists(src)) fs::copy_file(src, fs::path(to) / name, fs::copy_options::overwrite_existing);
}
}  // namespace

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  for (const char* const* f = kTokenizerFiles; *f; ++f) copy_if_there(from, to, *f);
}

void copy_side_files(const std::string& from, const std::string& to) {
  copy_tokenizer_files(from, to);
  copy_if_there(from, to, "config.json");
  copy_if_there(from, to, "generation_config.json");
}

}  // namespace medgpt::model
