#include "train/reshard.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "model/checkpoint.hpp"
#include "model/commit_marker.hpp"
#include "model/config.hpp"
#include "model/lora.hpp"
#include "model/shard_index.hpp"
#include "model/tp_plan.hpp"
#include "model/transformer.hpp"
#include "parallel/pipeline_schedule.hpp"
#include "train/run_checkpoint.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"

namespace medgpt::train {

namespace fs = std::filesystem;

namespace {

// The tp split dimension of a stored trainable tensor: a model weight's from the tp plan; a LoRA
// adapter's from the layer it adapts; a reward model's LoRA score head is whole.
int split_dim_of(const std::string& name, const model::ModelConfig& c, int tp) {
  std::string weight;
  bool is_a = false;
  if (model::lora_base_weight(name, &weight, &is_a)) return model::lora_split_dim(model::tp_split_dim(weight, c, tp), is_a);
  if (name.rfind("base_model.model.", 0) == 0) return -1;
  return model::tp_split_dim(name, c, tp);
}

// Whether pipeline stage `stage` holds the stored tensor `name`: the stage's own parameters (its
// meta-device model's names, a tied head's embedding copy included), or an adapter of one of them.
bool on_stage(const std::string& name, const std::set<std::string>& params) {
  std::string weight;
  bool is_a = false;
  if (model::lora_base_weight(name, &weight, &is_a)) return params.count(weight) > 0;
  if (name.rfind("base_model.model.", 0) == 0) return params.count(name.substr(17)) > 0;  // the score head
  return params.count(name) > 0;
}

TensorBlock block_in(const std::vector<std::int64_t>& logical, int dim, int rank, int tp) {
  TensorBlock b{logical, std::vector<std::int64_t>(logical.size(), 0), logical};
  if (dim >= 0) {
    const auto d = static_cast<std::size_t>(dim);
    if (logical[d] % tp != 0) util::fail("--tp", std::to_string(tp) + " does not divide dimension " + std::to_string(dim) + " of a tensor", "pick another --tp");
    b.shape[d] = logical[d] / tp;
    b.offset[d] = b.shape[d] * rank;
  }
  return b;
}

}  // namespace

void reshard_checkpoint(const std::string& in, const std::string& out, const ReshardOptions& o) {
  if (!model::is_committed(in)) util::fail(in, "is not a committed checkpoint", "pass a checkpoints/step-* folder with COMMITTED");
  if (const std::string damage = model::verify_checkpoint(in); !damage.empty()) util::fail(in, "is damaged: " + damage, "pass an intact checkpoint");
  nlohmann::ordered_json meta = nlohmann::ordered_json::parse(util::read_file(in + "/meta.json"));
  if (!meta.contains("trainer")) util::fail(in, "is a model checkpoint, not a training run's", "use medgpt import --tp to split a model");
  if (!meta["trainer"].contains("optimizer"))
    util::fail(in, "was written by an older medgpt (optimizer state by rank, not by name)", "resume it once in its own layout, then reshard the next checkpoint");
  if (o.tp < 1 || o.pp < 1) util::fail("--tp/--pp", "must be at least 1", "e.g. --tp 2 --pp 2");
  if (fs::exists(out) && !fs::is_empty(out)) util::fail(out, "exists and is not empty", "pass a new folder");
  const model::ModelConfig config = model::ModelConfig::load(in);
  model::check_tp(config, o.tp);
  const std::vector<int> layers = parallel::stage_layers(static_cast<int>(config.num_layers), o.pp, o.pp_layers);

  const int old_tp = meta.value("tp", 1), old_pp = meta.value("pp", 1);
  std::vector<std::string> model_files, optim_files;
  for (int p = 0; p < old_pp; ++p)
    for (int r = 0; r < old_tp; ++r) model_files.push_back(model::shard_file({r, old_tp, p, old_pp}));
  for (const auto& e : fs::directory_iterator(in)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("optim-", 0) == 0 && e.path().extension() == ".h5") optim_files.push_back(name);
  }
  const model::ShardIndex weights = model::ShardIndex::scan(in, model_files, "");
  const model::ShardIndex exp_avg = model::ShardIndex::scan(in, optim_files, "exp_avg"), exp_avg_sq = model::ShardIndex::scan(in, optim_files, "exp_avg_sq");

  const std::string tmp = out + ".partial";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::set<std::string> placed;
  for (int p = 0; p < o.pp; ++p) {
    std::set<std::string> params;
    for (const auto& [name, t] : model::Transformer(config, at::kFloat, at::kMeta, nullptr, model::StageView::of(layers, p)).named_parameters())
      params.insert(name);
    for (int r = 0; r < o.tp; ++r) {
      model::NamedTensors tensors;
      std::vector<std::vector<std::int64_t>> logical, offsets;
      std::vector<MomentPiece> moments;
      for (const std::string& name : weights.names()) {
        if (!on_stage(name, params)) continue;
        const TensorBlock b = block_in(weights.logical_shape(name), split_dim_of(name, config, o.tp), r, o.tp);
        tensors.emplace_back(name, weights.read_block(name, b.offset, b.shape));
        logical.push_back(b.logical);
        offsets.push_back(b.offset);
        placed.insert(name);
        // A tied head's embedding copy on the last stage has the first stage's moments: stored once.
        if (p > 0 && name == "model.embed_tokens.weight") continue;
        std::int64_t n = 1;
        for (const std::int64_t d : b.shape) n *= d;
        moments.push_back({name, b, 0, n, exp_avg.read(name, b.offset, b.shape, 0, n), exp_avg_sq.read(name, b.offset, b.shape, 0, n)});
      }
      model::write_model_shard(tmp, {r, o.tp, p, o.pp}, tensors, logical, offsets);
      write_optimizer_file(tmp + "/" + optimizer_file(r, o.tp, p, o.pp, 0, 1), meta["trainer"]["optimizer"].value("steps", std::int64_t{0}), moments);
    }
  }
  for (const std::string& name : weights.names())
    if (!placed.count(name)) util::fail(in + ": " + name, "belongs to no stage of this model", "the checkpoint and its config.json disagree");

  // The side files (config, tokenizer) as they are; meta.json names the new layout and the old one.
  for (const auto& e : fs::directory_iterator(in)) {
    const std::string name = e.path().filename().string();
    if (name == "meta.json" || name == "COMMITTED" || name.rfind("model-", 0) == 0 || name.rfind("optim-", 0) == 0) continue;
    fs::copy(e.path(), tmp + "/" + name, fs::copy_options::recursive);
  }
  nlohmann::ordered_json& t = meta["trainer"];
  meta["resharded_from"] = {{"tp", old_tp}, {"pp", old_pp}, {"dp", t.value("dp", 1)}, {"zero", t.value("zero", 0)}};
  meta["tp"] = o.tp;
  meta["pp"] = o.pp;
  t["dp"] = 1;  // the optimizer files hold whole moments: any dp and ZeRO stage reads them
  t["zero"] = 0;
  util::write_file_atomic(tmp + "/meta.json", meta.dump(2) + "\n");
  model::write_commit_marker(tmp, model::digest_folder(tmp));
  util::fsync_path(tmp);
  fs::rename(tmp, out);
}

}  // namespace medgpt::train
