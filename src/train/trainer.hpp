// The training loop shared by every stage (HF Trainer's order of operations, specs/algorithms.md
// §1-2): per optimizer step, G micro-batches per rank (G = global / (micro * dp)) whose losses are
// normalised by the items of the whole global batch, gradients summed over micro-batches and dp
// ranks, a non-finite step skipped, global-norm clipping, AdamW with the scheduled learning rate.
// Under pipeline parallelism the G micro-batches go through the stages in 1F1B order instead.
// At every step boundary the ranks agree on a preemption signal (checkpoint, then exit 99);
// evaluation, logging and checkpoints every N steps.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "data/loader.hpp"
#include "parallel/grid.hpp"
#include "train/adamw.hpp"
#include "train/data_parallel.hpp"
#include "train/flat_params.hpp"
#include "train/metric_window.hpp"
#include "train/metrics.hpp"
#include "parallel/pipeline.hpp"
#include "train/objective.hpp"
#include "train/run_checkpoint.hpp"
#include "train/schedule.hpp"
#include "train/zero_units.hpp"

namespace medgpt::train {

struct TrainerOptions {
  std::string output_dir;
  std::int64_t micro_batch_size = 1, global_batch_size = 8;  // sequences (rows)
  std::int64_t max_steps = 0;                                // > 0 wins over epochs
  double epochs = 1;
  AdamWOptions adam;
  std::string schedule = "linear";
  std::int64_t warmup_steps = 0;
  double warmup_ratio = 0, min_lr_rate = 0;
  double max_grad_norm = 1.0;
  int zero = 0;
  std::int64_t logging_steps = 1, eval_steps = 0, save_steps = 0, max_bad_steps = 10;
  bool eval_on_start = false;  // a step-0 row with the starting model's validation loss
  std::uint64_t seed = 42;
  double flops_per_token = 0;  // for MFU
  double peak_flops = 0;       // 0: measured (train/peak_flops.hpp)
  at::ScalarType compute_dtype = at::kFloat;
  // Pipeline parallelism with a tied head: the first and the last stage each hold the embedding.
  bool tied_embeddings = false;
  // false: no checkpoint when the run finishes (benchmarks); preemption still saves one.
  bool save_final = true;
  // Testing aid: behave as if SIGUSR1 arrived once this step is done (0: never).
  std::int64_t preempt_at_step = 0;
};

struct TrainData {
  const data::TokenArrays* train = nullptr;
  const data::TokenArrays* valid = nullptr;  // may be null
  data::Kind kind = data::Kind::Pt;
  std::size_t seq_len = 1024;
  bool packing = true;
  std::int32_t pad_id = 0;
  std::size_t group = 1;  // 2: preference pairs (micro/global batch sizes then count pairs)
};

// Everything in the options that can be wrong, as one util::Error naming the option: run before
// any long work (medgpt train) and again by the Trainer itself.
void check_trainer_options(const TrainerOptions& o, int dp_size);

enum class TrainResult { kFinished, kPreempted, kTooManyBadSteps };

class Trainer {
 public:
  // `zero` (ZeRO-2/3; null otherwise) is the objective's model's unit hooks over `flat`.
  Trainer(TrainerOptions opt, parallel::Grid& grid, FlatParams& flat, Objective& objective, const TrainData& data,
          RunCheckpointer& checkpointer, ZeroUnits* zero = nullptr);
  // From `resume_dir` (a committed checkpoint) or from the start ("").
  TrainResult run(const std::string& resume_dir);
  // Validation loss (the objective's mean over the whole validation split) and its exp; with `row`,
  // the objective's metrics too, as eval_<name>.
  std::pair<double, double> evaluate();
  std::pair<double, double> evaluate(nlohmann::ordered_json* row);
  std::int64_t total_steps() const { return total_; }
  const RunState& state() const { return state_; }
  std::string last_checkpoint() const { return last_checkpoint_; }

 private:
  // What one optimizer step did.
  struct StepReport {
    double loss = 0, grad_norm = 0, lr = 0, seconds = 0;
    std::int64_t tokens = 0;  // real tokens of the global batch
    bool finite = true;       // false: the update was skipped
  };
  // The ranks agree at the step boundary whether any got SIGUSR1/SIGTERM.
  bool stop_requested();
  // One optimizer step: the micro-batches' forward and backward passes, the reduction over dp,
  // clipping and AdamW (torchtitan's train_step).
  StepReport train_step();
  // The micro-batches' forward and backward passes, gradients accumulated in flat_: one after the
  // other, or through the pipeline stages in 1F1B order. Returns the summed loss (0 on a pipeline
  // stage other than the last).
  double forward_backward(const std::vector<data::Batch>& micro, double normalizer);
  // The objective's metrics of the batches since the last call; under pipeline parallelism the
  // last stage's (where the loss is computed), on every stage.
  std::vector<Metric> stage_metrics();
  // Pipeline parallelism with a tied embedding: the first and the last stage's copies get the sum
  // of both gradients.
  void sum_tied_embedding_grads();
  // The logging window, evaluation every eval_steps, a metrics row every logging_steps.
  void log_and_evaluate(const StepReport& step, MetricsLog& metrics);
  void log_start_eval(MetricsLog& metrics);
  void save();

  TrainerOptions opt_;
  parallel::Grid& grid_;
  FlatParams& flat_;
  Objective& objective_;
  TrainData data_;
  RunCheckpointer& checkpointer_;
  ZeroUnits* zero_;
  DataParallel dp_;
  parallel::Pipeline pipeline_;
  AdamW adam_;
  data::Loader loader_;
  std::int64_t accumulation_ = 1, total_ = 0;
  Schedule schedule_;
  RunState state_;
  std::string last_checkpoint_;
  // The run in progress: where it started, the measured peak, time per phase, the logging window.
  double peak_ = 0;
  double setup_tensors_peak_ = 0;  // bytes of live tensors at most before the first step
  std::chrono::steady_clock::time_point run_start_;
  std::int64_t first_step_ = 0;
  struct {
    double data = 0, forward = 0, backward = 0, comm = 0, optimizer = 0;
    double pipeline = 0;  // waiting for the neighbouring stages: the bubble and the transfers
  } timing_;
  struct Window {
    double loss = 0, time = 0;
    std::int64_t finite = 0, tokens = 0;
    MetricWindow objective;
  } window_;
};

}  // namespace medgpt::train
