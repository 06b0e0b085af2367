// `medgpt import` (Hugging Face folder -> medgpt checkpoint, optionally split for tensor
// parallelism), `medgpt export` (checkpoint -> Hugging Face folder) and `medgpt checkpoint reshard`
// (a training run's checkpoint as another layout's files). The round trip keeps every tensor bit
// for bit, the names, and tied embeddings tied.
#include <algorithm>
#include <filesystem>
#include <optional>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "model/checkpoint.hpp"
#include "model/config.hpp"
#include "model/safetensors.hpp"
#include "model/tp_plan.hpp"
#include "model/transformer.hpp"
#include "train/reshard.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

namespace fs = std::filesystem;

// "keep", or a dtype every floating tensor is converted to.
std::optional<at::ScalarType> dtype_option(const po::variables_map& vm) {
  const std::string d = vm["dtype"].as<std::string>();
  if (d == "keep") return std::nullopt;
  return model::parse_dtype(d);
}

void convert(model::NamedTensors& tensors, std::optional<at::ScalarType> dtype) {
  if (!dtype) return;
  for (auto& [name, t] : tensors)
    if (t.is_floating_point()) t = t.to(*dtype);
}

int run_import(const po::variables_map& vm) {
  const std::string src = required(vm, "model"), dst = required(vm, "output");
  const int tp = vm["tp"].as<int>();
  if (tp < 1) util::fail("--tp", "must be at least 1", "pass the tensor-parallel size the training job will use");
  const model::ModelConfig config = model::ModelConfig::load(src);
  model::check_tp(config, tp);
  model::NamedTensors weights = model::read_safetensors_dir(src);
  model::validate_weights(config, weights, src);
  if (config.tie_word_embeddings)  // transformers re-ties on load; the checkpoint stores one copy
    weights.erase(std::remove_if(weights.begin(), weights.end(), [](const auto& w) { return w.first == "lm_head.weight"; }), weights.end());
  convert(weights, dtype_option(vm));
  if (fs::exists(dst) && !fs::is_empty(dst)) util::fail(dst, "exists and is not empty", "pass a new folder");
  for (int r = 0; r < tp; ++r) {
    model::NamedTensors shard;
    std::vector<std::vector<std::int64_t>> logical, offsets;
    for (const auto& [name, full] : weights) {
      const int dim = model::tp_split_dim(name, config, tp);
      at::Tensor part = model::tp_shard(full, dim, r, tp);
      std::vector<std::int64_t> off(static_cast<std::size_t>(full.dim()), 0);
      if (dim >= 0) off[static_cast<std::size_t>(dim)] = part.size(dim) * r;
      shard.emplace_back(name, part);
      logical.push_back(full.sizes().vec());
      offsets.push_back(off);
    }
    model::write_model_shard(dst, {r, tp, 0, 1}, shard, logical, offsets);
  }
  model::copy_side_files(src, dst);
  if (dtype_option(vm)) model::set_config_dtype(dst, model::hf_dtype_label(weights));
  model::commit_checkpoint(dst, {0, tp, 0, 1}, model::hf_dtype_label(weights));
  util::log("imported " + std::to_string(weights.size()) + " tensors (" + std::to_string(config.num_parameters()) +
            " parameters) from " + src + " into " + dst + " (tp " + std::to_string(tp) + ")");
  return 0;
}

int run_export(const po::variables_map& vm) {
  const std::string src = required(vm, "checkpoint"), dst = required(vm, "output");
  model::export_hf(src, dst, dtype_option(vm), vm["max-shard-size"].as<std::int64_t>());
  util::log("exported " + src + " to " + dst);
  return 0;
}

int run_reshard(const po::variables_map& vm) {
  const std::string src = required(vm, "input"), dst = required(vm, "output");
  train::ReshardOptions o;
  o.tp = vm["tp"].as<int>();
  o.pp = vm["pp"].as<int>();
  o.pp_layers = vm["pp-layers"].as<std::string>();
  train::reshard_checkpoint(src, dst, o);
  util::log("resharded " + src + " into " + dst + " (tp " + std::to_string(o.tp) + ", pp " + std::to_string(o.pp) + ")");
  return 0;
}

}  // namespace

void register_checkpoint_commands(std::vector<Command>& out) {
  out.push_back({"import", "Hugging Face model folder -> medgpt checkpoint (HDF5 shards, optionally split for tensor parallelism)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("model", po::value<std::string>(), "Hugging Face model folder (config.json + *.safetensors) (required)")
                       ("output", po::value<std::string>(), "new checkpoint folder (required)")
                       ("tp", at_least(1)->default_value(1), "tensor-parallel shards to write")
                       ("dtype", po::value<std::string>()->default_value("keep"), "keep, bf16 or fp32");
                 },
                 run_import});
  out.push_back({"export", "medgpt checkpoint -> Hugging Face model folder (loads in transformers unchanged)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("checkpoint", po::value<std::string>(), "checkpoint folder (with COMMITTED) (required)")
                       ("output", po::value<std::string>(), "output Hugging Face folder (required)")
                       ("dtype", po::value<std::string>()->default_value("keep"), "keep, bf16 or fp32")
                       ("max-shard-size", at_least<std::int64_t>(1)->default_value(5'000'000'000),
                        "bytes per safetensors shard (huggingface_hub's default: 5 GB)");
                 },
                 run_export});
  out.push_back({"checkpoint reshard",
                 "a training run's checkpoint -> the same checkpoint as another tp x pp layout's files (any dp and ZeRO stage resume from it)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("input", po::value<std::string>(), "a run's checkpoints/step-* folder (with COMMITTED) (required)")
                       ("output", po::value<std::string>(), "new checkpoint folder; resume from it with --resume (required)")
                       ("tp", at_least(1)->default_value(1), "tensor-parallel size of the run that will resume")
                       ("pp", at_least(1)->default_value(1), "pipeline stages of the run that will resume")
                       ("pp-layers", po::value<std::string>()->default_value(""), "layers per stage, e.g. 7,9 (default: an even split)");
                 },
                 run_reshard});
}

}  // namespace medgpt::app
