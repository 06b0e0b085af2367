// A training run's checkpoint (DESIGN §5): OUT/checkpoints/step-XXXXXXXX/ holding
//   model-tpXX-of-YY-ppXX-of-YY.h5  the trainable tensors (fp32 master values; the whole model for
//                                   full fine-tuning, the adapters for LoRA), model checkpoint format
//   optim-tpXX-of-YY-ppXX-of-YY-dpXX-of-ZZ.h5
//                                   AdamW moments by tensor name (exp_avg/NAME, exp_avg_sq/NAME),
//                                   each the rank's range of its block of the logical tensor
//   meta.json                       step, tokens, the data cursor, optimizer steps, layout, config
// Everything is stored by name and logical position, so a checkpoint resumes in any (tp, pp, dp,
// ZeRO) layout, each rank reading only the parts it holds (model/shard_index.hpp).
//   config.json, tokenizer files    so the folder is a usable model checkpoint
//   COMMITTED                       written last by rank 0, after every shard is fsynced: each
//                                   file's size and SHA-256 (model/commit_marker.hpp)
// Files are written into step-XXXXXXXX.partial/, renamed when committed: a crash leaves at most a
// .partial folder, which resume ignores and the next save replaces.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/loader.hpp"
#include "parallel/grid.hpp"
#include "train/adamw.hpp"
#include "train/data_parallel.hpp"
#include "train/flat_params.hpp"
#include "train/zero_units.hpp"

namespace medgpt::train {

// What must match for a checkpoint to be resumed by this run.
struct RunLayout {
  std::string stage, trainable, precision;  // "pt"; "full" | "lora"; "fp32" | "bf16"
  int tp = 1, pp = 1, dp = 1, zero = 0;
  std::int64_t trainable_numel = 0;  // elements of the logical trainable tensors (0: not checked)
  // What the data cursor and the schedule mean (0: not yet known, not checked): the batch sizes,
  // the row length and the training corpus (its sample and token counts).
  std::int64_t global_batch = 0, micro_batch = 0, seq_len = 0, corpus_samples = 0, corpus_tokens = 0;
  std::string corpus = "";  // its path, for messages
};

struct RunState {
  std::int64_t step = 0, tokens = 0, skipped_steps = 0, bad_in_row = 0;
  data::LoaderCursor cursor;  // the same on every rank
};

std::string checkpoint_dir(const std::string& output_dir, std::int64_t step);

// Where a tensor's part lies in its logical shape: a tp shard (offset, shape) of `logical`.
struct TensorBlock {
  std::vector<std::int64_t> logical, offset, shape;
};
// A trainable tensor's AdamW moments in an optimizer file: elements [begin, end) of its block,
// flattened (all of it, or under ZeRO the range one dp rank updates).
struct MomentPiece {
  std::string name;
  TensorBlock block;
  std::int64_t begin = 0, end = 0;
  at::Tensor exp_avg, exp_avg_sq;
};
// optim-tpXX-of-YY-ppXX-of-YY-dpXX-of-ZZ.h5
std::string optimizer_file(int tp_rank, int tp, int pp_rank, int pp, int dp_rank, int dp);
// Writes and fsyncs one optimizer file: the pieces under exp_avg/NAME and exp_avg_sq/NAME, and
// AdamW's step count.
void write_optimizer_file(const std::string& path, std::int64_t steps, const std::vector<MomentPiece>& pieces);
// Moves OUT's committed checkpoints past `step` (all of them for -1) into
// OUT/checkpoints-discarded-<unix time>/: a run that starts over, or resumes an older step, must not
// be resumed later from the abandoned run's newer steps. Returns how many were moved.
int discard_checkpoints_after(const std::string& output_dir, std::int64_t step);
// The step of a checkpoint folder (its meta.json).
std::int64_t checkpoint_step(const std::string& dir);

// Checks dir/meta.json against a run's layout (fields 0: not yet known, not checked), so a run
// pointed at another run's output dir, or resumed with another global batch, row length or corpus
// (whose data cursor and schedule would mean something else), stops with one line naming both
// values before any work. Another micro-batch size under the same global batch is only a warning:
// the same rows make each step, accumulated in other groups.
void check_resumable(const std::string& dir, const RunLayout& layout, bool warn = true);
// The newest committed OUT/checkpoints/step-* folder whose files match the sizes and SHA-256 that
// its COMMITTED records, or "" (half-written ones are ignored; a damaged one is skipped with a
// warning that names the file, falling back to the one before).
std::string newest_checkpoint(const std::string& output_dir);

class RunCheckpointer {
 public:
  // split_dims: each flat segment's tp split dimension (-1 whole). side_files_from: a folder whose
  // config/tokenizer files are copied into every checkpoint ("" for none).
  RunCheckpointer(std::string output_dir, parallel::Grid& grid, RunLayout layout, std::vector<int> split_dims,
                  std::string side_files_from, std::string config_text, int save_total_limit);

  // Collective over the world. Returns the committed folder. `zero` (ZeRO-2/3, may be null)
  // gathers each trainable tensor from the dp ranks' master shards as it is written (ZeRO-3).
  std::string save(const RunState& state, const FlatParams& flat, const AdamW& adam, const ZeroUnits* zero = nullptr);
  // Collective. Loads master values, optimizer state and the RunState from `dir`, written in this
  // layout or any other; util::Error (on every rank) when the checkpoint does not fit this run.
  RunState load(const std::string& dir, FlatParams& flat, AdamW& adam);
  void check_compatible(const std::string& dir) const { check_resumable(dir, layout_); }

 private:
  void prune();
  std::int64_t loaded_step_ = -1;

  std::string out_;
  parallel::Grid& grid_;
  RunLayout layout_;
  std::vector<int> split_dims_;
  std::string side_files_from_, config_text_;
  int save_total_limit_;
};

}  // namespace medgpt::train
