// `medgpt plan --model CONFIG|FOLDER --world N`: every valid (tp, pp, dp, ZeRO, activation
// checkpointing) layout of N ranks with the memory of its fullest rank and a predicted step time,
// ranked (train/plan.hpp has the model). The prediction uses this machine: one of the model's
// layers run forward and backward at the thread count given, and an all-reduce probe over the
// ranks plan runs on (alone: a memory copy stands in for the shared-memory transport).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "app/plan_options.hpp"
#include "model/transformer.hpp"
#include "parallel/grid.hpp"
#include "train/plan.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"

namespace medgpt::app {

namespace {

// Bus bandwidth (B/s) of a 64 MB float all-reduce over the world (best of 3), or half a memory
// copy's bandwidth on one rank.
std::pair<double, std::string> bandwidth_probe(parallel::Grid& grid) {
  const std::int64_t n = 16 << 20;
  at::Tensor t = at::ones({n}, at::kFloat);
  double best = 1e30;
  const int ranks = grid.world_size();
  for (int i = 0; i < 3; ++i) {
    grid.world().barrier();
    const auto t0 = util::Clock::now();
    if (ranks > 1) grid.world().allreduce(t, parallel::ReduceOp::kSum);
    else at::Tensor c = t.clone();
    best = std::min(best, util::seconds_since(t0));
  }
  const double bytes = 4.0 * static_cast<double>(n);
  if (ranks > 1) return {2.0 * (ranks - 1) / ranks * bytes / best, "all-reduce probe over " + std::to_string(ranks) + " ranks"};
  return {bytes / best / 2, "half a memory copy; run plan on 2+ ranks to probe the all-reduce"};
}

// FLOP/s of one of the model's own decoder layers, forward and backward, at the planned
// micro-batch (b x T rows) in the compute dtype, best of 3 after a warm-up: attention, norms and
// autograd included, which the 2048^3 matmul ceiling leaves out.
double layer_probe(const model::ModelConfig& c, std::int64_t micro, std::int64_t T, at::ScalarType dtype) {
  model::Transformer layer(c, at::kFloat, at::kCPU, nullptr, model::StageView{0, 1, false, false});
  {  // values do not matter, but not init_random: it draws the whole model's tensors
    at::NoGradGuard no_grad;
    for (auto& [name, p] : layer.named_parameters()) p.normal_(0.0, 0.02);
  }
  if (dtype != at::kFloat) layer.set_compute_dtype(dtype);
  layer.set_requires_grad(true);
  const at::Tensor x = at::randn({micro, T, c.hidden_size}).to(dtype).requires_grad_(true);
  double best = 1e30;
  for (int i = 0; i < 4; ++i) {
    const auto t0 = util::Clock::now();
    layer.stage_forward(x).sum().backward();
    if (i > 0) best = std::min(best, util::seconds_since(t0));
  }
  const double flops_per_token = 6.0 * static_cast<double>(train::layer_parameters(c)) + 12.0 * c.num_heads * c.head_dim * T;
  return flops_per_token * static_cast<double>(micro * T) / best;
}

int run_plan(const po::variables_map& vm) {
  train::PlanInputs in = run_shape(vm);
  if (!vm.count("world")) util::fail("--world", "missing", "pass the ranks of the planned run, e.g. --world 8");
  in.world = vm["world"].as<int>();
  in.global_batch = vm["global-batch"].as<std::int64_t>();
  in.memory_per_rank = vm["memory-per-rank"].as<double>() * 1024 * 1024 * 1024;

  parallel::Grid grid(1, 1);
  std::string flops_from = "given", bw_from = "given";
  if (vm["flops-per-rank"].as<double>() > 0) {
    in.flops_per_rank = vm["flops-per-rank"].as<double>() * 1e9;
  } else {  // every rank probes at once, as the ranks of the planned run would share the cores
    in.flops_per_rank = layer_probe(in.config, in.micro_batch, in.seq_len, in.bf16 ? at::kBFloat16 : at::kFloat);
    flops_from = "one of the model's layers, forward + backward at " + std::to_string(in.micro_batch) + " x " + std::to_string(in.seq_len) + ", " +
                 std::to_string(at::get_num_threads()) + " thread(s) per rank";
  }
  if (vm["bandwidth"].as<double>() > 0) {
    in.bandwidth = vm["bandwidth"].as<double>() * 1e9;
  } else {
    std::tie(in.bandwidth, bw_from) = bandwidth_probe(grid);
  }
  if (grid.rank() != 0) return 0;

  const std::vector<train::PlanRow> rows = train::plan(in);
  if (flag(vm, "json")) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& r : rows)
      out.push_back({{"tp", r.layout.tp}, {"pp", r.layout.pp}, {"dp", r.layout.dp}, {"zero", r.layout.zero},
                     {"checkpointing", r.layout.checkpointing}, {"micro_per_step", r.micro_per_step},
                     {"weights_bytes", r.weights}, {"grads_bytes", r.grads}, {"optimizer_bytes", r.optimizer},
                     {"activations_bytes", r.activations}, {"total_bytes", r.total()}, {"step_s", r.step_s()},
                     {"compute_s", r.compute_s}, {"bubble", r.bubble}, {"dp_s", r.dp_s}, {"tp_s", r.tp_s}, {"pp_s", r.pp_s},
                     {"fits", r.fits}});
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("plan: %s %.2fB parameters, %d ranks, T=%lld, global batch %lld rows (micro-batch %lld), %s, %s\n",
              in.config.model_type.c_str(), static_cast<double>(in.config.num_parameters()) / 1e9, in.world,
              static_cast<long long>(in.seq_len), static_cast<long long>(in.global_rows()), static_cast<long long>(in.micro_batch),
              in.bf16 ? "bf16" : "fp32", in.trainable.c_str());
  std::printf("  compute %.1f GFLOP/s per rank (%s); bandwidth %.2f GB/s (%s)\n", in.flops_per_rank / 1e9, flops_from.c_str(),
              in.bandwidth / 1e9, bw_from.c_str());
  std::printf("  %4s %3s %3s %4s %4s %4s | %8s %8s %8s %8s %8s GiB | %9s = %9s %7s %8s %8s %8s s\n", "rank", "tp", "pp", "dp", "zero",
              "ckpt", "weights", "grads", "optim", "activ", "total", "step", "compute", "bubble", "dp", "tp", "pp");
  const std::int64_t top = vm["top"].as<std::int64_t>();
  for (std::size_t i = 0; i < rows.size() && (top <= 0 || static_cast<std::int64_t>(i) < top); ++i) {
    const auto& r = rows[i];
    std::printf("  %4zu %3d %3d %4d %4d %4s | %8.2f %8.2f %8.2f %8.2f %8.2f     | %9.3f = %9.3f %6.1f%% %8.3f %8.3f %8.3f   %s\n", i + 1,
                r.layout.tp, r.layout.pp, r.layout.dp, r.layout.zero, r.layout.checkpointing ? "on" : "off", gib(r.weights),
                gib(r.grads), gib(r.optimizer), gib(r.activations), gib(r.total()), r.step_s(), r.compute_s, 100 * r.bubble, r.dp_s,
                r.tp_s, r.pp_s, r.fits ? "" : "over --memory-per-rank");
  }
  return 0;
}

}  // namespace

void register_plan_command(std::vector<Command>& out) {
  out.push_back({"plan", "every valid tp x pp x dp x ZeRO x checkpointing layout of N ranks: memory per rank and predicted step time, ranked",
                 [](po::options_description& d) {
                   add_run_shape_options(d);
                   d.add_options()
                       ("world", at_least(1), "ranks of the planned run (required)")
                       ("global-batch", non_negative<std::int64_t>()->default_value(0), "rows per step (0: micro-batch x world)")
                       ("memory-per-rank", non_negative<double>()->default_value(0), "GiB per rank; layouts above it are marked (0: no limit)")
                       ("flops-per-rank", non_negative<double>()->default_value(0), "GFLOP/s of one rank (0: probe this machine)")
                       ("bandwidth", non_negative<double>()->default_value(0), "all-reduce bus bandwidth in GB/s (0: probe)")
                       ("top", non_negative<std::int64_t>()->default_value(0), "print the best N layouts (0: all)");
                 },
                 run_plan});
}

}  // namespace medgpt::app
