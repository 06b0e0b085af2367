#include "train/run_checkpoint.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <map>

#include "parallel/agreement.hpp"
#include "model/checkpoint.hpp"
#include "model/commit_marker.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/h5.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::train {

namespace fs = std::filesystem;

namespace {

// One optimizer file per (tp, pp, dp) rank that holds state; the pp part only under pipeline
// parallelism (a pp 1 checkpoint keeps the names it always had).
std::string optim_file(const parallel::Grid& g, int dp_rank) {
  char buf[80];
  if (g.pp_size() == 1) std::snprintf(buf, sizeof buf, "optim-tp%02d-dp%02d-of-%02d.h5", g.tp_rank(), dp_rank, g.dp_size());
  else std::snprintf(buf, sizeof buf, "optim-tp%02d-pp%02d-dp%02d-of-%02d.h5", g.tp_rank(), g.pp_rank(), dp_rank, g.dp_size());
  return buf;
}

// Committed step folders, oldest first.
std::vector<std::pair<std::int64_t, std::string>> committed_steps(const std::string& output_dir) {
  std::vector<std::pair<std::int64_t, std::string>> out;
  const fs::path root = fs::path(output_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != 13 || name.rfind("step-", 0) != 0 || !e.is_directory()) continue;
    if (!std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (!model::is_committed(e.path().string())) continue;
    out.emplace_back(std::stoll(name.substr(5)), e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Testing aid for the crash-consistency tests (tests/cli/train.sh, tools/fault-inject.sh):
// MEDGPT_TEST_KILL_IN_CHECKPOINT=STEP[:POINT] dies like `kill -9` at POINT of writing checkpoint
// STEP. Points in write order: start, model, optim, digests (the default: every shard on disk, no
// COMMITTED yet), side, meta, committed (COMMITTED written, folder not yet renamed), renamed.
void die_here_for_test(std::int64_t step, const char* point) {
  const char* k = std::getenv("MEDGPT_TEST_KILL_IN_CHECKPOINT");
  if (!k) return;
  const std::string spec = k;
  const auto colon = spec.find(':');
  const std::string where = colon == std::string::npos ? "digests" : spec.substr(colon + 1);
  if (std::atoll(spec.c_str()) == step && where == point) std::raise(SIGKILL);
}

}  // namespace

std::int64_t checkpoint_step(const std::string& dir) {
  const nlohmann::json meta = util::read_json_file(dir + "/meta.json");
  if (!meta.contains("trainer")) util::fail(dir, "is a model checkpoint, not a training run's", "pass it as --model.path instead of --resume");
  return meta.at("trainer").at("step").get<std::int64_t>();
}

int discard_checkpoints_after(const std::string& output_dir, std::int64_t step) {
  int moved = 0;
  const fs::path aside = fs::path(output_dir) / ("checkpoints-discarded-" + std::to_string(std::time(nullptr)));
  for (const auto& [s, dir] : committed_steps(output_dir)) {
    if (s <= step) continue;
    fs::create_directories(aside);
    fs::rename(dir, aside / fs::path(dir).filename());
    ++moved;
  }
  return moved;
}

std::string checkpoint_dir(const std::string& output_dir, std::int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return (fs::path(output_dir) / "checkpoints" / buf).string();
}

std::string newest_checkpoint(const std::string& output_dir) {
  const auto steps = committed_steps(output_dir);
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    const std::string damage = model::verify_checkpoint(it->second);
    if (damage.empty()) return it->second;
    util::log("warning: checkpoint " + it->second + " is damaged (" + damage + "); " +
              (std::next(it) == steps.rend() ? std::string("no older checkpoint to fall back to") : "falling back to " + std::next(it)->second));
  }
  return "";
}

RunCheckpointer::RunCheckpointer(std::string output_dir, parallel::Grid& grid, RunLayout layout, std::vector<int> split_dims,
                                 std::string side_files_from, std::string config_text, int save_total_limit)
    : out_(std::move(output_dir)), grid_(grid), layout_(std::move(layout)), split_dims_(std::move(split_dims)),
      side_files_from_(std::move(side_files_from)), config_text_(std::move(config_text)), save_total_limit_(save_total_limit) {}

std::string RunCheckpointer::save(const RunState& state, const FlatParams& flat, const AdamW& adam) {
  parallel::Comm& world = grid_.world();
  const std::string final_dir = checkpoint_dir(out_, state.step), tmp = final_dir + ".partial";
  // A resumed run stopping at the step it resumed from has nothing new to write.
  if (state.step == loaded_step_) return final_dir;
  parallel::together(world, [&] {
    if (world.rank() == 0) {
      fs::remove_all(tmp);
      fs::create_directories(tmp);
    }
  });
  die_here_for_test(state.step, "start");

  const int tp = grid_.tp_size(), tpr = grid_.tp_rank(), dp = grid_.dp_size(), dpr = grid_.dp_rank();
  std::vector<model::FileDigest> written;  // this rank's files, for COMMITTED
  const std::vector<std::int64_t> epochs = parallel::allgather_int(grid_.dp(), state.cursor.epoch);
  const std::vector<std::int64_t> positions = parallel::allgather_int(grid_.dp(), state.cursor.position);
  parallel::together(world, [&] {
    if (dpr == 0) {  // the trainable tensors, from the fp32 master
      model::NamedTensors tensors;
      std::vector<std::vector<std::int64_t>> logical, offsets;
      for (std::size_t i = 0; i < flat.segments().size(); ++i) {
        const FlatSegment& s = flat.segments()[i];
        const at::Tensor& p = flat.params()[i].second;
        tensors.emplace_back(s.name, flat.master.narrow(0, s.offset, s.numel).view(p.sizes()));
        std::vector<std::int64_t> full = p.sizes().vec(), off(full.size(), 0);
        if (split_dims_[i] >= 0) {
          off[static_cast<std::size_t>(split_dims_[i])] = full[static_cast<std::size_t>(split_dims_[i])] * tpr;
          full[static_cast<std::size_t>(split_dims_[i])] *= tp;
        }
        logical.push_back(full);
        offsets.push_back(off);
      }
      const model::ShardLayout l{tpr, tp, grid_.pp_rank(), grid_.pp_size()};
      model::write_model_shard(tmp, l, tensors, logical, offsets);
      util::fsync_path(tmp + "/" + model::shard_file(l));
      written.push_back(model::digest_file(tmp, model::shard_file(l)));
      die_here_for_test(state.step, "model");
    }
    if (layout_.zero == 1 || dpr == 0) {  // without ZeRO every dp rank holds the same state
      const std::string path = tmp + "/" + optim_file(grid_, dpr);
      {
        util::H5File f = util::H5File::create(path);
        f.set_attr("", "format", "medgpt-optimizer");
        f.set_attr("", "state", std::vector<std::int64_t>{1, adam.steps(), adam.lo(), adam.hi(), flat.padded()});
        const std::vector<std::uint64_t> dims{static_cast<std::uint64_t>(adam.hi() - adam.lo())};
        f.write("exp_avg", H5T_NATIVE_FLOAT, dims, adam.exp_avg().contiguous().data_ptr());
        f.write("exp_avg_sq", H5T_NATIVE_FLOAT, dims, adam.exp_avg_sq().contiguous().data_ptr());
        f.close();
      }
      util::fsync_path(path);
      written.push_back(model::digest_file(tmp, optim_file(grid_, dpr)));
      die_here_for_test(state.step, "optim");
    }
  });
  // Each rank digests what it wrote (in parallel, from the page cache); rank 0 lists them all.
  std::string digests;
  for (const std::string& part : parallel::allgather_strings(world, model::to_lines(written))) digests += part;
  die_here_for_test(state.step, "digests");

  parallel::together(world, [&] {
    if (world.rank() != 0) return;
    if (!side_files_from_.empty()) model::copy_side_files(side_files_from_, tmp);
    die_here_for_test(state.step, "side");
    nlohmann::ordered_json cursors = nlohmann::ordered_json::array();
    for (int r = 0; r < dp; ++r)
      cursors.push_back({{"epoch", epochs[static_cast<std::size_t>(r)]}, {"position", positions[static_cast<std::size_t>(r)]},
                         {"seed", state.cursor.seed}, {"dp_size", dp}});
    nlohmann::ordered_json meta;
    meta["format_version"] = 1;
    meta["kind"] = "medgpt-checkpoint";
    meta["tp"] = tp;
    meta["pp"] = grid_.pp_size();
    meta["dtype"] = "float32";
    meta["trainer"] = {{"step", state.step},
                       {"tokens", state.tokens},
                       {"skipped_steps", state.skipped_steps},
                       {"bad_steps_in_row", state.bad_in_row},
                       {"stage", layout_.stage},
                       {"trainable", layout_.trainable},
                       {"precision", layout_.precision},
                       {"dp", dp},
                       {"zero", layout_.zero},
                       {"flat_numel", layout_.flat_numel},
                       {"global_batch_size", layout_.global_batch},
                       {"micro_batch_size", layout_.micro_batch},
                       {"seq_len", layout_.seq_len},
                       {"corpus", {{"path", layout_.corpus}, {"samples", layout_.corpus_samples}, {"tokens", layout_.corpus_tokens}}},
                       {"loader_cursors", cursors},
                       {"rng", "seeded per (seed, step, micro-batch, dp rank): nothing to carry"},
                       {"config", config_text_}};
    util::write_file_atomic(tmp + "/meta.json", meta.dump(2) + "\n");
    util::fsync_path(tmp + "/meta.json");
    die_here_for_test(state.step, "meta");
    std::vector<model::FileDigest> files = model::from_lines(digests);
    for (const auto& e : fs::directory_iterator(tmp)) {  // rank 0's own: meta.json and the side files
      const std::string name = e.path().filename().string();
      if (std::none_of(files.begin(), files.end(), [&](const model::FileDigest& f) { return f.name == name; }))
        files.push_back(model::digest_file(tmp, name));
    }
    model::write_commit_marker(tmp, files);
    die_here_for_test(state.step, "committed");
    util::fsync_path(tmp);
    fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
    util::fsync_path(fs::path(final_dir).parent_path().string());
    die_here_for_test(state.step, "renamed");
    prune();
  });
  return final_dir;
}

void RunCheckpointer::prune() {
  if (save_total_limit_ <= 0) return;
  auto steps = committed_steps(out_);
  while (static_cast<int>(steps.size()) > save_total_limit_) {
    // Uncommit first: a crash mid-delete leaves a folder resume ignores, not a damaged "committed" one.
    fs::remove(steps.front().second + "/COMMITTED");
    fs::remove_all(steps.front().second);
    steps.erase(steps.begin());
  }
}

void check_resumable(const std::string& dir, const RunLayout& layout_, bool warn) {
  const nlohmann::json meta = util::read_json_file(dir + "/meta.json");
  const std::string where = dir + "/meta.json: trainer.";
  if (!meta.contains("trainer"))
    util::fail(dir, "is a model checkpoint, not a training run's", "pass it as --model.path, or use another --output-dir");
  const nlohmann::json& t = meta.at("trainer");
  auto same = [&](const char* key, const nlohmann::json& mine, const std::string& todo) {
    if (t.value(key, nlohmann::json()) != mine)
      util::fail(where + key, "is " + t.value(key, nlohmann::json()).dump() + ", this run has " + mine.dump(), todo);
  };
  const std::string other = "this output dir holds another run: use a new --output-dir, or --resume never to start over in it";
  same("stage", layout_.stage, other);
  same("trainable", layout_.trainable, other);
  if (layout_.flat_numel > 0) same("flat_numel", layout_.flat_numel, other + " (the model or its trainable parameters differ)");
  same("precision", layout_.precision, "resume with the same --train.precision");
  if (meta.value("tp", 1) != layout_.tp || meta.value("pp", 1) != layout_.pp)
    util::fail(dir + "/meta.json: tp", "checkpoint layout tp " + std::to_string(meta.value("tp", 1)) + " pp " + std::to_string(meta.value("pp", 1)) +
               " differs from this run's tp " + std::to_string(layout_.tp) + " pp " + std::to_string(layout_.pp),
               "resume with the same --parallel.tp/--parallel.pp (or export the model and start a new run from it)");
  same("dp", layout_.dp, "resume with the same number of ranks / data-parallel size");
  same("zero", layout_.zero, "resume with the same --train.zero");
  // Checkpoints of older versions lack these: nothing to compare.
  auto known = [&](const char* key, std::int64_t mine) { return mine > 0 && t.contains(key) && t.at(key).get<std::int64_t>() > 0; };
  const std::string fresh = "or start a new run from this checkpoint's weights (--model.path " + dir + ") in another --output-dir";
  if (known("global_batch_size", layout_.global_batch))
    same("global_batch_size", layout_.global_batch, "resume with --train.global_batch_size " + t.at("global_batch_size").dump() + ", " + fresh);
  if (known("seq_len", layout_.seq_len))
    same("seq_len", layout_.seq_len, "resume with the row length it was trained with (--data.max_length / block size " + t.at("seq_len").dump() + "), " + fresh);
  if (layout_.corpus_samples > 0 && t.contains("corpus")) {
    const nlohmann::json& c = t.at("corpus");
    const std::int64_t samples = c.value("samples", std::int64_t{0}), tokens = c.value("tokens", std::int64_t{0});
    if (samples != layout_.corpus_samples || tokens != layout_.corpus_tokens)
      util::fail(where + "corpus", "was " + c.value("path", std::string("?")) + " (" + std::to_string(samples) + " samples, " + std::to_string(tokens) +
                 " tokens), this run trains on " + layout_.corpus + " (" + std::to_string(layout_.corpus_samples) + " samples, " +
                 std::to_string(layout_.corpus_tokens) + " tokens)", "resume on the same training data, " + fresh);
  }
  if (warn && known("micro_batch_size", layout_.micro_batch) && t.at("micro_batch_size").get<std::int64_t>() != layout_.micro_batch)
    util::log("warning: " + where + "micro_batch_size is " + t.at("micro_batch_size").dump() + ", this run uses " + std::to_string(layout_.micro_batch) +
              " (same global batch: each step takes the same rows, accumulated in other groups)");
}

RunState RunCheckpointer::load(const std::string& dir, FlatParams& flat, AdamW& adam) {
  parallel::Comm& world = grid_.world();
  RunState state;
  parallel::together(world, [&] {
    check_resumable(dir, layout_, /*warn=*/false);  // warned when the run checked it first
    const nlohmann::json meta = util::read_json_file(dir + "/meta.json");
    const nlohmann::json& t = meta.at("trainer");
    std::map<std::string, at::Tensor> full;
    for (auto& [name, tensor] : model::read_model_full(dir)) full[name] = tensor;
    at::NoGradGuard no_grad;
    for (std::size_t i = 0; i < flat.segments().size(); ++i) {
      const FlatSegment& s = flat.segments()[i];
      auto it = full.find(s.name);
      if (it == full.end()) util::fail(dir, "has no tensor " + s.name, "the checkpoint belongs to another model");
      at::Tensor part = it->second;
      const at::Tensor& p = flat.params()[i].second;
      if (split_dims_[i] >= 0) part = part.narrow(split_dims_[i], p.size(split_dims_[i]) * grid_.tp_rank(), p.size(split_dims_[i]));
      if (part.sizes() != p.sizes()) util::fail(dir + ": " + s.name, "has another shape than this run's parameter", "the checkpoint belongs to another model");
      flat.master.narrow(0, s.offset, s.numel).copy_(part.reshape({-1}));
    }
    flat.publish();
    const int dpr = layout_.zero == 1 ? grid_.dp_rank() : 0;
    const std::string path = dir + "/" + optim_file(grid_, dpr);
    const util::H5File f = util::H5File::open(path);
    const auto st = f.attr_ints("", "state");
    if (st.size() != 5 || st[2] != adam.lo() || st[3] != adam.hi() || st[4] != flat.padded())
      util::fail(path, "optimizer shard does not cover this rank's range", "resume with the same layout");
    at::Tensor m = at::empty({adam.hi() - adam.lo()}, at::kFloat), v = at::empty_like(m);
    f.read("exp_avg", H5T_NATIVE_FLOAT, m.data_ptr());
    f.read("exp_avg_sq", H5T_NATIVE_FLOAT, v.data_ptr());
    adam.set_state(m, v, st[1]);
    state.step = t.at("step");
    state.tokens = t.at("tokens");
    state.skipped_steps = t.value("skipped_steps", 0);
    state.bad_in_row = t.value("bad_steps_in_row", 0);
    const nlohmann::json& c = t.at("loader_cursors").at(static_cast<std::size_t>(grid_.dp_rank()));
    state.cursor = {c.at("epoch"), c.at("position"), c.at("seed"), c.at("dp_size")};
  });
  loaded_step_ = state.step;
  return state;
}

}  // namespace medgpt::train
