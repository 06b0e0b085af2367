#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <optional>

#include "parallel/agreement.hpp"
#include "parallel/pipeline_schedule.hpp"
#include "train/memory_stats.hpp"
#include "train/metric_window.hpp"
#include "train/peak_flops.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/signals.hpp"

namespace medgpt::train {

namespace {

using util::Clock;
using util::seconds_since;

// Noise (NEFTune, LoRA dropout) is keyed by (seed, step, micro-batch, dp rank), so a resumed run
// draws exactly what the uninterrupted run drew, with no generator state to carry. tp ranks share
// the key: replicated activations get the same noise on each.
void seed_noise(std::uint64_t seed, std::int64_t step, std::int64_t micro, int dp_rank) {
  std::uint64_t k = seed * 0x9E3779B97F4A7C15ull ^ static_cast<std::uint64_t>(step) * 0xBF58476D1CE4E5B9ull ^
                    static_cast<std::uint64_t>(micro) * 0x94D049BB133111EBull ^ static_cast<std::uint64_t>(dp_rank + 1);
  k ^= k >> 31;
  at::manual_seed(k & 0x7FFFFFFFFFFFFFFFull);
}

std::string duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

data::LoaderOptions loader_options(const TrainerOptions& o, const TrainData& d, const parallel::Grid& g) {
  data::LoaderOptions l;
  l.rows = static_cast<std::size_t>(o.micro_batch_size) * d.group;
  l.group = d.group;
  l.seq_len = d.seq_len;
  l.packing = d.packing;
  l.seed = o.seed;
  l.dp_rank = g.dp_rank();
  l.dp_size = g.dp_size();
  l.pad_id = d.pad_id;
  return l;
}

}  // namespace

void check_trainer_options(const TrainerOptions& o, int dp_size) {
  check_zero_stage(o.zero);
  if (o.micro_batch_size < 1) util::fail("--train.micro_batch_size", "must be at least 1", "e.g. --train.micro_batch_size 4");
  if (o.global_batch_size < 1) util::fail("--train.global_batch_size", "must be at least 1", "e.g. --train.global_batch_size 32");
  if (o.max_steps <= 0 && !(o.epochs > 0)) util::fail("--train.epochs", "must be positive when --train.max_steps is 0", "set one of them");
  if (o.logging_steps < 1) util::fail("--train.logging_steps", "must be at least 1", "e.g. --train.logging_steps 10");
  if (o.max_bad_steps < 1) util::fail("--train.max_bad_steps", "must be at least 1", "e.g. --train.max_bad_steps 10");
  check_schedule_type(o.schedule, "--train.lr_scheduler_type");
  if (!(o.adam.lr >= 0 && o.adam.lr <= 1e30))  // AdamW's step lr / (1 - beta1^t) must stay a float
    util::fail("--train.learning_rate", "is " + std::to_string(o.adam.lr) + "; it must be between 0 and 1e30", "e.g. --train.learning_rate 2e-5");
  const std::int64_t per_step = o.micro_batch_size * dp_size;
  if (o.global_batch_size % per_step != 0)
    util::fail("--train.global_batch_size", "is " + std::to_string(o.global_batch_size) + ", not a multiple of micro_batch_size x dp = " +
               std::to_string(o.micro_batch_size) + " x " + std::to_string(dp_size), "make the global batch a multiple of " + std::to_string(per_step));
}

Trainer::Trainer(TrainerOptions opt, parallel::Grid& grid, FlatParams& flat, Objective& objective, const TrainData& data,
                 RunCheckpointer& checkpointer, ZeroUnits* zero)
    : opt_((check_trainer_options(opt, grid.dp_size()), std::move(opt))), grid_(grid), flat_(flat), objective_(objective), data_(data), checkpointer_(checkpointer),
      zero_(zero),
      dp_(&grid.dp(), &grid.tp(), &grid.pp(), opt_.zero), pipeline_(grid.pp()),
      adam_(flat, opt_.adam, dp_.shard(flat).first, dp_.shard(flat).second),
      loader_(*data.train, data.kind, loader_options(opt_, data, grid)) {
  if ((opt_.zero >= 2) != (zero_ != nullptr) || (zero_ && grid.pp_size() > 1))
    util::fail("Trainer", "ZeRO-2/3 need their ZeroUnits, and no pipeline stages", "internal error: see train::check_zero_layout");
  accumulation_ = opt_.global_batch_size / (opt_.micro_batch_size * grid.dp_size());
  if (opt_.max_steps > 0) {
    total_ = opt_.max_steps;
  } else {  // the stream's rows per epoch, the same on every rank and in every layout
    const auto rows = static_cast<std::int64_t>(loader_.rows_per_epoch()), per_step = opt_.micro_batch_size * accumulation_ * grid.dp_size();
    total_ = static_cast<std::int64_t>(std::ceil(opt_.epochs * static_cast<double>(std::max<std::int64_t>(1, (rows + per_step - 1) / per_step))));
  }
  schedule_ = {opt_.schedule, warmup_steps(opt_.warmup_steps, opt_.warmup_ratio, total_), total_, opt_.min_lr_rate};
}

void Trainer::save() {
  state_.cursor = loader_.cursor();
  last_checkpoint_ = checkpointer_.save(state_, flat_, adam_, zero_);
  util::log("checkpoint " + last_checkpoint_);
}

std::pair<double, double> Trainer::evaluate() { return evaluate(nullptr); }

std::pair<double, double> Trainer::evaluate(nlohmann::ordered_json* row) {
  if (!data_.valid) return {NAN, NAN};
  at::NoGradGuard no_grad;
  objective_.set_training(false);
  objective_.take_metrics();  // training batches' values belong to the training row
  MetricWindow metrics;
  const auto group = static_cast<std::int64_t>(data_.group);
  const auto n = static_cast<std::int64_t>(data::sample_count(*data_.valid, data_.kind)) / group;
  double loss_sum = 0, items = 0;
  std::vector<std::int64_t> groups;
  auto flush = [&] {
    if (groups.empty()) return;
    std::vector<std::int64_t> rows;  // each group's m-th sample in the m-th block of rows
    for (std::int64_t m = 0; m < group; ++m)
      for (const std::int64_t g : groups) rows.push_back(g * group + m);
    const data::Batch b = data::batch_of(*data_.valid, data_.kind, rows, data_.seq_len, data_.pad_id);
    if (grid_.pp_size() == 1) {
      loss_sum += objective_.loss(b, 1.0, false).item<double>();
    } else {  // the loss arrives on the last stage; summed over pp below
      parallel::Pipeline::Stage stage;
      stage.forward = [&](int, const at::Tensor& input) { return objective_.stage_forward(b, input, 1.0, false); };
      stage.activation_like = [&](int) { return objective_.activation_like(b); };
      loss_sum += pipeline_.forward_only(1, stage);
    }
    items += objective_.items(b);
    if (zero_) zero_->finish();  // ZeRO-3: the head gathered for the loss is released
    metrics.add(stage_metrics());
    groups.clear();
  };
  for (std::int64_t s = grid_.dp_rank(); s < n; s += grid_.dp_size()) {
    groups.push_back(s);
    if (static_cast<std::int64_t>(groups.size()) == opt_.micro_batch_size) flush();
  }
  flush();
  objective_.set_training(true);
  at::Tensor t = at::tensor({loss_sum, items}, at::kDouble);
  if (grid_.pp_size() > 1) {
    at::Tensor l = t.narrow(0, 0, 1);
    grid_.pp().allreduce(l, parallel::ReduceOp::kSum);
  }
  grid_.dp().allreduce(t, parallel::ReduceOp::kSum);
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  metrics.report(grid_.dp(), extra, "eval_");
  if (row) row->update(extra);
  const double loss = t[0].item<double>() / std::max(1.0, t[1].item<double>());
  return {loss, std::exp(loss)};
}

TrainResult Trainer::run(const std::string& resume_dir) {
  parallel::Comm& world = grid_.world();
  if (!resume_dir.empty()) {
    state_ = checkpointer_.load(resume_dir, flat_, adam_);
    loader_.restore(state_.cursor);
    util::log("resumed from " + resume_dir + " at step " + std::to_string(state_.step) + " of " + std::to_string(total_));
  }
  MetricsLog metrics(opt_.output_dir, world.rank() == 0, state_.step);
  peak_ = opt_.peak_flops > 0 ? opt_.peak_flops : peak_flops(opt_.compute_dtype, world);
  char buf[512];
  std::snprintf(buf, sizeof buf, "training %lld steps: global batch %lld = %lld micro x %lld accumulation x %d dp, seq %zu; lr %g %s (warmup %lld); ceiling %.1f GFLOP/s",
                static_cast<long long>(total_), static_cast<long long>(opt_.global_batch_size), static_cast<long long>(opt_.micro_batch_size),
                static_cast<long long>(accumulation_), grid_.dp_size(), data_.seq_len, opt_.adam.lr, opt_.schedule.c_str(),
                static_cast<long long>(schedule_.warmup), peak_ / 1e9);
  util::log(buf);
  if (opt_.eval_on_start && state_.step == 0 && data_.valid) log_start_eval(metrics);

  setup_tensors_peak_ = memory_peak().tensors;  // loading, sharding, the first evaluation
  restart_tensor_peak();
  run_start_ = Clock::now();
  first_step_ = state_.step;
  timing_ = {};
  window_ = {};
  TrainResult result = TrainResult::kFinished;
  while (state_.step < total_) {
    if (stop_requested()) {
      util::log_end_line();
      util::log("stop signal: writing a checkpoint at step " + std::to_string(state_.step) + ", then exiting with code " +
                std::to_string(util::kPreemptedExitCode));
      save();
      return TrainResult::kPreempted;
    }
    const StepReport step = train_step();
    log_and_evaluate(step, metrics);
    if (state_.bad_in_row >= opt_.max_bad_steps) {
      util::log_end_line();
      save();
      result = TrainResult::kTooManyBadSteps;
      break;
    }
    if (opt_.save_steps > 0 && state_.step % opt_.save_steps == 0 && state_.step != total_) {
      util::log_end_line();
      save();
    }
  }
  util::log_end_line();
  const double steps = static_cast<double>(std::max<std::int64_t>(1, state_.step - first_step_));
  std::snprintf(buf, sizeof buf, "time per step: data %.3f s, forward %.3f s, backward %.3f s, all-reduce %.3f s, optimizer %.3f s",
                timing_.data / steps, timing_.forward / steps, timing_.backward / steps, timing_.comm / steps, timing_.optimizer / steps);
  util::log(buf);
  const MemoryPeak mem = memory_peak();
  at::Tensor most = at::tensor({mem.resident, mem.tensors, setup_tensors_peak_}, at::kDouble);
  world.allreduce(most, parallel::ReduceOp::kMax);
  std::snprintf(buf, sizeof buf,
                "memory per rank (the most of any rank): peak resident %.0f MiB, LibTorch tensors at most %.0f MiB in training (%.0f MiB setting up)",
                most[0].item<double>() / (1 << 20), most[1].item<double>() / (1 << 20), most[2].item<double>() / (1 << 20));
  util::log(buf);
  if (grid_.pp_size() > 1) {
    const double busy = timing_.forward + timing_.backward;
    std::snprintf(buf, sizeof buf, "pipeline: %d stages, %lld micro-batches: waited %.3f s per step, bubble %.1f%% (1F1B ideal %.1f%%)",
                  grid_.pp_size(), static_cast<long long>(accumulation_), timing_.pipeline / steps,
                  100.0 * timing_.pipeline / std::max(1e-12, busy + timing_.pipeline), 100.0 * parallel::ideal_bubble(grid_.pp_size(), static_cast<int>(accumulation_)));
    util::log(buf);
  }
  if (result == TrainResult::kFinished && opt_.save_final) save();
  return result;
}

bool Trainer::stop_requested() {
  // Step boundary: every rank stops at the same step when any got SIGUSR1/SIGTERM.
  if (opt_.preempt_at_step > 0 && state_.step == opt_.preempt_at_step && state_.step > first_step_) util::raise_stop_flag(SIGUSR1);
  return parallel::allreduce_int(grid_.world(), util::stop_signal(), parallel::ReduceOp::kMax) != 0;
}

double Trainer::forward_backward(const std::vector<data::Batch>& micro, double normalizer) {
  double loss_sum = 0;
  if (grid_.pp_size() == 1) {
    for (std::int64_t g = 0; g < accumulation_; ++g) {
      seed_noise(opt_.seed, state_.step, g, grid_.dp_rank());
      auto t0 = Clock::now();
      at::Tensor loss = objective_.loss(micro[static_cast<std::size_t>(g)], normalizer, true);
      timing_.forward += seconds_since(t0);
      t0 = Clock::now();
      loss.backward();
      if (zero_) zero_->finish();  // ZeRO-2/3: what no layer boundary reduced
      else flat_.collect_grads();
      timing_.backward += seconds_since(t0);
      loss_sum += loss.item<double>();
      window_.objective.add(objective_.take_metrics());
    }
    return loss_sum;
  }
  const auto t0 = Clock::now();
  const double waited = pipeline_.wait_seconds();
  double forward = 0;
  parallel::Pipeline::Stage stage;
  stage.forward = [&](int i, const at::Tensor& input) {
    seed_noise(opt_.seed, state_.step, i, grid_.dp_rank());
    const auto f0 = Clock::now();
    at::Tensor out = objective_.stage_forward(micro[static_cast<std::size_t>(i)], input, normalizer, true);
    forward += seconds_since(f0);
    return out;
  };
  stage.activation_like = [&](int i) { return objective_.activation_like(micro[static_cast<std::size_t>(i)]); };
  stage.after_backward = [&](int) { flat_.collect_grads(); };
  loss_sum = pipeline_.train(static_cast<int>(accumulation_), stage);
  window_.objective.add(stage_metrics());
  const double wait = pipeline_.wait_seconds() - waited;
  timing_.forward += forward;
  timing_.backward += seconds_since(t0) - forward - wait;
  timing_.pipeline += wait;
  return loss_sum;
}

std::vector<Metric> Trainer::stage_metrics() {
  std::vector<Metric> m = objective_.take_metrics();
  if (grid_.pp_size() == 1) return m;
  // Names as text, values (NaN included) as doubles, from the last stage.
  const int last = grid_.pp_size() - 1;
  std::string names;
  for (const Metric& x : m) names += x.name + "\n";
  names = parallel::broadcast_string(grid_.pp(), names, last);
  std::vector<std::string> got;
  for (std::size_t at = 0, nl; (nl = names.find('\n', at)) != std::string::npos; at = nl + 1) got.push_back(names.substr(at, nl - at));
  if (got.empty()) return {};  // the LM stages: no metrics of their own
  at::Tensor values = at::zeros({2, static_cast<std::int64_t>(got.size())}, at::kDouble);
  if (grid_.pp_rank() == last)
    for (std::size_t i = 0; i < m.size(); ++i) {
      values[0][static_cast<std::int64_t>(i)] = m[i].value;
      values[1][static_cast<std::int64_t>(i)] = m[i].weight;
    }
  grid_.pp().broadcast(values, last);
  m.clear();
  for (std::size_t i = 0; i < got.size(); ++i)
    m.push_back({got[i], values[0][static_cast<std::int64_t>(i)].item<double>(), values[1][static_cast<std::int64_t>(i)].item<double>()});
  return m;
}

void Trainer::sum_tied_embedding_grads() {
  parallel::Comm* group = grid_.embedding();
  if (!group || !opt_.tied_embeddings) return;
  for (const FlatSegment& s : flat_.segments())
    if (s.name == "model.embed_tokens.weight") group->allreduce(flat_.grad.narrow(0, s.offset, s.numel), parallel::ReduceOp::kSum);
}

Trainer::StepReport Trainer::train_step() {
  const auto step_start = Clock::now();
  StepReport r;
  // The step's micro-batches, and the global batch's item count that normalises every loss.
  auto t0 = Clock::now();
  std::vector<data::Batch> micro;
  double items = 0;
  std::int64_t tokens = 0;
  for (std::int64_t g = 0; g < accumulation_; ++g) {
    micro.push_back(loader_.next());
    items += objective_.items(micro.back());
    for (std::uint8_t m : micro.back().attention_mask) tokens += m;
  }
  at::Tensor counts = at::tensor({items, static_cast<double>(tokens)}, at::kDouble);
  grid_.dp().allreduce(counts, parallel::ReduceOp::kSum);
  const double normalizer = std::max(1.0, counts[0].item<double>());
  r.tokens = static_cast<std::int64_t>(counts[1].item<double>());
  timing_.data += seconds_since(t0);

  flat_.zero_grads();
  const double loss_part = forward_backward(micro, normalizer);

  // Reduce over pp (the loss lives on the last stage) and dp, clip, update (a non-finite step is skipped).
  t0 = Clock::now();
  sum_tied_embedding_grads();
  at::Tensor l = at::full({1}, loss_part, at::kDouble);
  if (grid_.pp_size() > 1) grid_.pp().allreduce(l, parallel::ReduceOp::kSum);
  grid_.dp().allreduce(l, parallel::ReduceOp::kSum);
  r.loss = l.item<double>();
  dp_.reduce_grads(flat_);
  r.grad_norm = dp_.grad_norm(flat_);
  timing_.comm += seconds_since(t0);

  t0 = Clock::now();
  r.lr = opt_.adam.lr * schedule_.factor(state_.step);
  r.finite = std::isfinite(r.loss) && std::isfinite(r.grad_norm);
  if (r.finite) {
    state_.bad_in_row = 0;
    if (opt_.max_grad_norm > 0) {
      const double coef = opt_.max_grad_norm / (r.grad_norm + 1e-6);
      if (coef < 1.0) dp_.scale_grads(flat_, coef);
    }
    adam_.step(flat_, r.lr);
    dp_.gather_params(flat_);
    flat_.publish();
  } else {
    ++state_.skipped_steps;
    ++state_.bad_in_row;
    util::log_end_line();
    char buf[256];
    std::snprintf(buf, sizeof buf, "step %lld: non-finite loss %g or gradient norm %g; update skipped (%lld in a row, %lld in all)",
                  static_cast<long long>(state_.step + 1), r.loss, r.grad_norm, static_cast<long long>(state_.bad_in_row),
                  static_cast<long long>(state_.skipped_steps));
    util::log(buf);
  }
  timing_.optimizer += seconds_since(t0);
  ++state_.step;
  state_.tokens += r.tokens;
  r.seconds = seconds_since(step_start);
  return r;
}

void Trainer::log_start_eval(MetricsLog& metrics) {
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  const auto [loss, ppl] = evaluate(&extra);
  nlohmann::ordered_json row = {{"step", 0}, {"eval_loss", loss}};
  if (objective_.perplexity()) row["eval_ppl"] = ppl;
  row.update(extra);
  metrics.write(row);
  util::log("step 0: eval_loss " + std::to_string(loss) + (objective_.perplexity() ? ", eval_ppl " + std::to_string(ppl) : std::string()));
}

void Trainer::log_and_evaluate(const StepReport& step, MetricsLog& metrics) {
  if (step.finite) {
    window_.loss += step.loss;
    ++window_.finite;
  }
  window_.time += step.seconds;
  window_.tokens += step.tokens;

  const bool last = state_.step == total_;
  std::optional<std::pair<double, double>> ev;
  nlohmann::ordered_json eval_extra = nlohmann::ordered_json::object();
  if (opt_.eval_steps > 0 && data_.valid && (state_.step % opt_.eval_steps == 0 || last)) ev = evaluate(&eval_extra);
  if (!(state_.step % opt_.logging_steps == 0 || last || ev)) return;
  const double tps = static_cast<double>(window_.tokens) / std::max(1e-9, window_.time);
  nlohmann::ordered_json row;
  row["step"] = state_.step;
  row["epoch"] = static_cast<double>(loader_.cursor().epoch) +
                 static_cast<double>(loader_.cursor().position) / static_cast<double>(loader_.samples_per_epoch());
  row["loss"] = window_.finite ? window_.loss / static_cast<double>(window_.finite) : NAN;
  row["lr"] = opt_.adam.lr * schedule_.factor(state_.step);  // the next update's, as transformers logs it
  row["grad_norm"] = step.grad_norm;
  row["tokens"] = state_.tokens;
  row["tokens_per_s"] = tps;
  row["mfu"] = opt_.flops_per_token * tps / peak_;
  row["time_s"] = seconds_since(run_start_);
  window_.objective.report(grid_.dp(), row, "");
  if (ev) {
    row["eval_loss"] = ev->first;
    if (objective_.perplexity()) row["eval_ppl"] = ev->second;
    row.update(eval_extra);
  }
  if (!step.finite) row["skipped"] = state_.skipped_steps;
  metrics.write(row);
  const double done = static_cast<double>(state_.step - first_step_);
  const double eta = seconds_since(run_start_) / std::max(1.0, done) * static_cast<double>(total_ - state_.step);
  char buf[512];
  std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.4f  lr %.3g  %.0f tok/s  MFU %.1f%%  ETA %s%s", static_cast<long long>(state_.step),
                static_cast<long long>(total_), row["loss"].get<double>(), step.lr, tps, 100.0 * row["mfu"].get<double>(), duration(eta).c_str(),
                ev ? ("  eval_loss " + std::to_string(ev->first)).c_str() : "");
  util::log_progress(buf);
  if (ev) util::log_end_line();
  window_ = {};  // the objective's window was started anew by report()
}

}  // namespace medgpt::train
