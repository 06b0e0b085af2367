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
#include "model/shard_index.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/h5.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::train {

namespace fs = std::filesystem;

namespace {

// Checkpoints before optimizer state by name: one flat range per rank, resumable in the same layout.
std::string legacy_optim_file(const parallel::Grid& g, int dp_rank) {
  char buf[80];
  if (g.pp_size() == 1) std::snprintf(buf, sizeof buf, "optim-tp%02d-dp%02d-of-%02d.h5", g.tp_rank(), dp_rank, g.dp_size());
  else std::snprintf(buf, sizeof buf, "optim-tp%02d-pp%02d-dp%02d-of-%02d.h5", g.tp_rank(), g.pp_rank(), dp_rank, g.dp_size());
  return buf;
}

// Where segment i of this rank's flat buffer lies in its tensor's logical shape (a tp shard along
// split_dim, or all of it).
TensorBlock block_of(const at::Tensor& p, int split_dim, int tp_rank, int tp) {
  TensorBlock b{p.sizes().vec(), std::vector<std::int64_t>(static_cast<std::size_t>(p.dim()), 0), p.sizes().vec()};
  if (split_dim >= 0) {
    const auto d = static_cast<std::size_t>(split_dim);
    b.offset[d] = b.shape[d] * tp_rank;
    b.logical[d] *= tp;
  }
  return b;
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

std::string optimizer_file(int tp_rank, int tp, int pp_rank, int pp, int dp_rank, int dp) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "optim-tp%02d-of-%02d-pp%02d-of-%02d-dp%02d-of-%02d.h5", tp_rank, tp, pp_rank, pp, dp_rank, dp);
  return buf;
}

void write_optimizer_file(const std::string& path, std::int64_t steps, const std::vector<MomentPiece>& pieces) {
  util::H5File f = util::H5File::create(path);
  f.set_attr("", "format", "medgpt-optimizer");
  f.set_attr("", "steps", std::vector<std::int64_t>{steps});
  for (const MomentPiece& p : pieces)
    for (const auto& [moment, values] : {std::make_pair("exp_avg", &p.exp_avg), std::make_pair("exp_avg_sq", &p.exp_avg_sq)}) {
      const std::string name = std::string(moment) + "/" + p.name;
      const at::Tensor v = values->to(at::kFloat).contiguous();
      if (v.numel() != p.end - p.begin) util::fail(path + ": " + name, "holds another number of elements than its range", "internal error");
      f.write(name, H5T_NATIVE_FLOAT, {static_cast<std::uint64_t>(v.numel())}, v.data_ptr());
      f.set_attr(name, "dtype", "float32");
      f.set_attr(name, "logical_shape", p.block.logical);
      f.set_attr(name, "offset", p.block.offset);
      f.set_attr(name, "block_shape", p.block.shape);
      f.set_attr(name, "range", std::vector<std::int64_t>{p.begin, p.end});
    }
  f.close();
  util::fsync_path(path);
}

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

std::string RunCheckpointer::save(const RunState& state, const FlatParams& flat, const AdamW& adam, const ZeroUnits* zero) {
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

  const int tp = grid_.tp_size(), tpr = grid_.tp_rank(), dpr = grid_.dp_rank();
  std::vector<model::FileDigest> written;  // this rank's files, for COMMITTED
  parallel::together(world, [&] {
    // The trainable tensors, from the fp32 master (under ZeRO-3 gathered one at a time from the
    // dp ranks' shards), written by dp rank 0.
    const bool gathered = flat.master_sharded();
    if (gathered && !zero) util::fail("RunCheckpointer::save", "the master is sharded and no ZeroUnits gathers it", "internal error");
    if (dpr == 0 || gathered) {
      const model::ShardLayout l{tpr, tp, grid_.pp_rank(), grid_.pp_size()};
      std::optional<model::ModelShardWriter> w;
      if (dpr == 0) w.emplace(tmp, l);
      for (std::size_t i = 0; i < flat.segments().size(); ++i) {
        const FlatSegment& s = flat.segments()[i];
        const at::Tensor& p = flat.params()[i].second;
        const at::Tensor t = gathered ? zero->gather_segment(i) : flat.master_range(s.offset, s.offset + s.numel);
        const TensorBlock b = block_of(p, split_dims_[i], tpr, tp);
        if (w) w->add(s.name, t.view(p.sizes()), b.logical, b.offset);
      }
      if (w) {
        w->close();
        util::fsync_path(tmp + "/" + model::shard_file(l));
        written.push_back(model::digest_file(tmp, model::shard_file(l)));
        die_here_for_test(state.step, "model");
      }
    }
    if (layout_.zero >= 1 || dpr == 0) {  // without ZeRO every dp rank holds the same state
      const std::string optim_name = optimizer_file(tpr, tp, grid_.pp_rank(), grid_.pp_size(), dpr, grid_.dp_size());
      std::vector<MomentPiece> pieces;
      for (std::size_t i = 0; i < flat.segments().size(); ++i) {
        const FlatSegment& s = flat.segments()[i];
        const std::int64_t lo = std::max(adam.lo(), s.offset), hi = std::min(adam.hi(), s.offset + s.numel);
        if (s.copy || hi <= lo) continue;  // a tied head's copy has the embedding's state
        pieces.push_back({s.name, block_of(flat.params()[i].second, split_dims_[i], tpr, tp), lo - s.offset, hi - s.offset,
                          adam.exp_avg().narrow(0, lo - adam.lo(), hi - lo), adam.exp_avg_sq().narrow(0, lo - adam.lo(), hi - lo)});
      }
      write_optimizer_file(tmp + "/" + optim_name, adam.steps(), pieces);
      written.push_back(model::digest_file(tmp, optim_name));
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
                       {"dp", grid_.dp_size()},
                       {"zero", layout_.zero},
                       {"trainable_numel", layout_.trainable_numel},
                       {"global_batch_size", layout_.global_batch},
                       {"micro_batch_size", layout_.micro_batch},
                       {"seq_len", layout_.seq_len},
                       {"corpus", {{"path", layout_.corpus}, {"samples", layout_.corpus_samples}, {"tokens", layout_.corpus_tokens}}},
                       {"loader", {{"epoch", state.cursor.epoch}, {"position", state.cursor.position}, {"seed", state.cursor.seed}}},
                       {"optimizer", {{"steps", adam.steps()}, {"state", "by tensor name: optim-*.h5 exp_avg/NAME, exp_avg_sq/NAME"}}},
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
  if (layout_.trainable_numel > 0 && t.contains("trainable_numel"))
    same("trainable_numel", layout_.trainable_numel, other + " (the model or its trainable parameters differ)");
  same("precision", layout_.precision, "resume with the same --train.precision");
  if (!t.contains("optimizer")) {  // written before optimizer state by name: the same layout only
    if (meta.value("tp", 1) != layout_.tp || meta.value("pp", 1) != layout_.pp)
      util::fail(dir + "/meta.json: tp", "checkpoint layout tp " + std::to_string(meta.value("tp", 1)) + " pp " + std::to_string(meta.value("pp", 1)) +
                 " differs from this run's tp " + std::to_string(layout_.tp) + " pp " + std::to_string(layout_.pp),
                 "this checkpoint was written by an older medgpt: resume it with the same --parallel.tp/--parallel.pp");
    same("dp", layout_.dp, "this checkpoint was written by an older medgpt: resume it with the same number of ranks / data-parallel size");
    same("zero", layout_.zero, "this checkpoint was written by an older medgpt: resume it with the same --train.zero");
  }
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

namespace {

// The data cursor of a checkpoint written before the layout-independent sample order: one per dp
// rank. One rank's is the same; several ranks' took every dp-th sample each, which the global order
// continues exactly when each row is one sample (not for packed rows).
data::LoaderCursor legacy_cursor(const nlohmann::json& cursors, const std::string& where) {
  data::LoaderCursor c{cursors.at(0).at("epoch"), 0, cursors.at(0).at("seed")};
  for (const auto& r : cursors) {
    if (r.at("epoch") != c.epoch)
      util::fail(where, "its data-parallel ranks stopped in different epochs", "resume it with the medgpt that wrote it");
    c.position += r.at("position").get<std::int64_t>();
  }
  return c;
}

}  // namespace

RunState RunCheckpointer::load(const std::string& dir, FlatParams& flat, AdamW& adam) {
  parallel::Comm& world = grid_.world();
  // meta.json and the index of every shard file, read on rank 0 (the others' views of a shared
  // filesystem may lag); each rank then reads only the parts it holds.
  const std::string meta_text = parallel::root_decides(world, [&] {
    check_resumable(dir, layout_, /*warn=*/false);  // warned when the run checked it first
    return util::read_file(dir + "/meta.json");
  });
  const nlohmann::json meta = nlohmann::json::parse(meta_text);
  const nlohmann::json& t = meta.at("trainer");
  const bool by_name = t.contains("optimizer");
  const int old_tp = meta.value("tp", 1), old_pp = meta.value("pp", 1);
  const std::string indexes = parallel::root_decides(world, [&] {
    std::vector<std::string> models, optims;
    for (int p = 0; p < old_pp; ++p)
      for (int r = 0; r < old_tp; ++r) models.push_back(model::shard_file({r, old_tp, p, old_pp}));
    nlohmann::json j = {{"model", model::ShardIndex::scan(dir, models, "").to_json()}};
    if (by_name) {
      for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("optim-", 0) == 0 && e.path().extension() == ".h5") optims.push_back(name);
      }
      std::sort(optims.begin(), optims.end());
      j["exp_avg"] = model::ShardIndex::scan(dir, optims, "exp_avg").to_json();
      j["exp_avg_sq"] = model::ShardIndex::scan(dir, optims, "exp_avg_sq").to_json();
      const int old_dp = t.value("dp", 1), old_zero = t.value("zero", 0);
      if (old_tp != layout_.tp || old_pp != layout_.pp || old_dp != layout_.dp || old_zero != layout_.zero)
        util::log("resharding " + dir + " from tp " + std::to_string(old_tp) + " pp " + std::to_string(old_pp) + " dp " + std::to_string(old_dp) +
                  " zero " + std::to_string(old_zero) + " to tp " + std::to_string(layout_.tp) + " pp " + std::to_string(layout_.pp) + " dp " +
                  std::to_string(layout_.dp) + " zero " + std::to_string(layout_.zero));
    }
    return j.dump();
  });
  RunState state;
  parallel::together(world, [&] {
    const nlohmann::json idx = nlohmann::json::parse(indexes);
    const model::ShardIndex weights = model::ShardIndex::from_json(dir, idx.at("model").get<std::string>());
    const int tp = grid_.tp_size(), tpr = grid_.tp_rank();
    std::vector<TensorBlock> blocks;
    at::NoGradGuard no_grad;
    for (std::size_t i = 0; i < flat.segments().size(); ++i) {
      const FlatSegment& s = flat.segments()[i];
      blocks.push_back(block_of(flat.params()[i].second, split_dims_[i], tpr, tp));
      const TensorBlock& b = blocks.back();
      if (weights.has(s.name) && weights.logical_shape(s.name) != b.logical)
        util::fail(dir + ": " + s.name, "has shape " + nlohmann::json(weights.logical_shape(s.name)).dump() + ", this run's is " + nlohmann::json(b.logical).dump(),
                   "the checkpoint belongs to another model");
      if (!flat.master_sharded()) {
        flat.master_range(s.offset, s.offset + s.numel).copy_(weights.read_block(s.name, b.offset, b.shape).reshape({-1}));
      } else {  // ZeRO-3: this rank's range only
        const std::int64_t lo = std::max(flat.master_lo(), s.offset), hi = std::min(flat.master_lo() + flat.master.numel(), s.offset + s.numel);
        if (lo < hi) flat.master_range(lo, hi).copy_(weights.read(s.name, b.offset, b.shape, lo - s.offset, hi - s.offset));
      }
    }
    flat.publish();
    at::Tensor m = at::zeros({adam.hi() - adam.lo()}, at::kFloat), v = at::zeros_like(m);
    std::int64_t steps = 0;
    if (by_name) {
      const model::ShardIndex exp_avg = model::ShardIndex::from_json(dir, idx.at("exp_avg").get<std::string>());
      const model::ShardIndex exp_avg_sq = model::ShardIndex::from_json(dir, idx.at("exp_avg_sq").get<std::string>());
      for (std::size_t i = 0; i < flat.segments().size(); ++i) {
        const FlatSegment& s = flat.segments()[i];
        const std::int64_t lo = std::max(adam.lo(), s.offset), hi = std::min(adam.hi(), s.offset + s.numel);
        if (hi <= lo) continue;
        const TensorBlock& b = blocks[i];
        m.narrow(0, lo - adam.lo(), hi - lo).copy_(exp_avg.read(s.name, b.offset, b.shape, lo - s.offset, hi - s.offset));
        v.narrow(0, lo - adam.lo(), hi - lo).copy_(exp_avg_sq.read(s.name, b.offset, b.shape, lo - s.offset, hi - s.offset));
      }
      steps = t.at("optimizer").at("steps");
    } else {
      const std::string path = dir + "/" + legacy_optim_file(grid_, layout_.zero >= 1 ? grid_.dp_rank() : 0);
      const util::H5File f = util::H5File::open(path);
      const auto st = f.attr_ints("", "state");
      if (st.size() != 5 || st[2] != adam.lo() || st[3] != adam.hi() || st[4] != flat.padded())
        util::fail(path, "optimizer shard does not cover this rank's range", "resume with the same layout");
      f.read("exp_avg", H5T_NATIVE_FLOAT, m.data_ptr());
      f.read("exp_avg_sq", H5T_NATIVE_FLOAT, v.data_ptr());
      steps = st[1];
    }
    adam.set_state(m, v, steps);
    state.step = t.at("step");
    state.tokens = t.at("tokens");
    state.skipped_steps = t.value("skipped_steps", 0);
    state.bad_in_row = t.value("bad_steps_in_row", 0);
    if (t.contains("loader")) {
      const nlohmann::json& c = t.at("loader");
      state.cursor = {c.at("epoch"), c.at("position"), c.at("seed")};
    } else {
      state.cursor = legacy_cursor(t.at("loader_cursors"), dir + "/meta.json: trainer.loader_cursors");
    }
  });
  loaded_step_ = state.step;
  return state;
}

}  // namespace medgpt::train
