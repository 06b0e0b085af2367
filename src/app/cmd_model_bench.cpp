// `medgpt model bench`: forward+backward throughput of a randomly initialised model (an HF
// config.json) and its MFU against the matmul ceiling measured first on this machine:
// MFU = (6 * params + 12 * layers * heads * head_dim * T) * tokens/s / ceiling, and the process's
// peak resident memory (--attn eager|chunked, --checkpointing: what long sequences cost).
// `medgpt model bench-generate`: prefill and decode tokens/s of KV-cache generation.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <sys/resource.h>

#include <cstdio>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "model/kv_cache.hpp"
#include "model/transformer.hpp"
#include "train/peak_flops.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

int run_model_bench(const po::variables_map& vm) {
  const model::ModelConfig config = model::ModelConfig::load(required(vm, "config-json"));
  const at::ScalarType dtype = model::parse_dtype(vm["dtype"].as<std::string>());
  const std::int64_t T = vm["seq-len"].as<std::int64_t>(), B = vm["batch"].as<std::int64_t>();
  const int steps = vm["steps"].as<int>();

  double ceiling = train::matmul_probe(dtype);
  model::Transformer m(config, dtype);
  m.init_random(1234);
  m.set_requires_grad(true);
  const std::string attn = vm["attn"].as<std::string>();
  if (attn != "eager" && attn != "chunked") util::fail("--attn", "is \"" + attn + "\"", "use eager or chunked");
  m.set_chunked_attention(attn == "chunked");
  m.set_gradient_checkpointing(vm.count("checkpointing") > 0);
  at::Tensor ids = at::randint(config.vocab_size, {B, T}, at::kLong);

  auto step = [&] {
    at::Tensor loss = m.loss(ids, ids);
    loss.backward();
    for (auto& [n, p] : m.named_parameters()) p.mutable_grad() = at::Tensor();
  };
  double best = 1e30;
  for (int s = 0; s < steps + 1; ++s) {  // the first step warms up and is not counted
    const auto t0 = util::Clock::now();
    step();
    if (s > 0) best = std::min(best, util::seconds_since(t0));
  }
  if (vm.count("profile")) {  // one more step under the autograd profiler: a chrome://tracing file
    torch::autograd::profiler::RecordProfile guard(vm["profile"].as<std::string>());
    step();
  }
  // Probed again after the steps, the higher kept: a ceiling measured while a neighbour was busy
  // would inflate the MFU.
  ceiling = std::max(ceiling, train::matmul_probe(dtype));
  const double tokens_per_s = static_cast<double>(B * T) / best;
  const double params = static_cast<double>(config.num_parameters());
  const double flops_per_token = 6.0 * params + 12.0 * config.num_layers * config.num_heads * config.head_dim * T;
  const double achieved = flops_per_token * tokens_per_s;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("model bench: %s %.1fM params, %s, B=%lld T=%lld, attention %s%s, %d threads: %.3f s/step, %.0f tokens/s, %.1f GFLOP/s; "
              "matmul ceiling %.1f GFLOP/s; MFU %.1f%%; peak memory %.0f MiB\n",
              config.model_type.c_str(), params / 1e6, vm["dtype"].as<std::string>().c_str(), static_cast<long long>(B),
              static_cast<long long>(T), attn.c_str(), vm.count("checkpointing") ? " + checkpointing" : "", at::get_num_threads(), best,
              tokens_per_s, achieved / 1e9, ceiling / 1e9, 100.0 * achieved / ceiling, static_cast<double>(usage.ru_maxrss) / 1024.0);
  return 0;
}

// Prefill and decode throughput of KV-cache generation with random weights: batch B of T-token
// prompts, then N new tokens each (greedy, no EOS).
int run_generate_bench(const po::variables_map& vm) {
  const model::ModelConfig config = model::ModelConfig::load(required(vm, "config-json"));
  const at::ScalarType dtype = model::parse_dtype(vm["dtype"].as<std::string>());
  const std::int64_t B = vm["batch"].as<std::int64_t>(), T = vm["prompt-len"].as<std::int64_t>(), N = vm["new-tokens"].as<std::int64_t>();
  model::Transformer m(config, at::kFloat);
  m.init_random(1234);
  if (dtype != at::kFloat) m.set_compute_dtype(dtype);
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(config.vocab_size, {B, T}, at::kLong);
  double prefill = 1e30, decode = 1e30;
  for (int rep = 0; rep < 2; ++rep) {  // the first round warms up
    model::KvCache cache;
    model::ForwardInputs in;
    in.cache = &cache;
    auto t0 = util::Clock::now();
    at::Tensor logits = m.last_logits(ids, in);
    const double tp = util::seconds_since(t0);
    t0 = util::Clock::now();
    for (std::int64_t k = 0; k < N; ++k) logits = m.last_logits(logits.argmax(-1).view({B, 1}), in);
    const double td = util::seconds_since(t0);
    if (rep > 0) prefill = std::min(prefill, tp), decode = std::min(decode, td);
  }
  std::printf("generate bench: %s %.1fM params, %s, %d threads, batch %lld: prefill %lld tokens %.0f tokens/s; decode %lld steps %.1f tokens/s (%.1f ms/step)\n",
              config.model_type.c_str(), static_cast<double>(config.num_parameters()) / 1e6, vm["dtype"].as<std::string>().c_str(), at::get_num_threads(),
              static_cast<long long>(B), static_cast<long long>(T), static_cast<double>(B * T) / prefill, static_cast<long long>(N),
              static_cast<double>(B * N) / decode, 1e3 * decode / static_cast<double>(N));
  return 0;
}

}  // namespace

void register_model_bench(std::vector<Command>& out) {
  out.push_back({"model bench-generate", "prefill and decode tokens/s of KV-cache generation with a random model",
                 [](po::options_description& d) {
                   d.add_options()
                       ("config-json", po::value<std::string>(), "HF config.json of the model shape (required)")
                       ("dtype", po::value<std::string>()->default_value("fp32"), "fp32 or bf16")
                       ("batch", at_least<std::int64_t>(1)->default_value(1), "sequences generated together")
                       ("prompt-len", at_least<std::int64_t>(1)->default_value(128), "prompt tokens (prefill)")
                       ("new-tokens", at_least<std::int64_t>(1)->default_value(64), "decode steps");
                 },
                 run_generate_bench});
  out.push_back({"model bench", "forward+backward tokens/s and MFU of a random model against this machine's matmul ceiling",
                 [](po::options_description& d) {
                   d.add_options()
                       ("config-json", po::value<std::string>(), "HF config.json of the model shape (e.g. inputs/models/bench-30m.json) (required)")
                       ("dtype", po::value<std::string>()->default_value("fp32"), "fp32 or bf16 (weights and compute)")
                       ("seq-len", at_least<std::int64_t>(1)->default_value(512), "tokens per sequence")
                       ("batch", at_least<std::int64_t>(1)->default_value(1), "sequences per step")
                       ("steps", at_least(1)->default_value(3), "timed steps (best reported) after one warm-up")
                       ("attn", po::value<std::string>()->default_value("eager"), "eager or chunked attention")
                       ("checkpointing", "recompute each block in the backward pass")
                       ("profile", po::value<std::string>(), "write one more step's operator trace here (chrome://tracing JSON)");
                 },
                 run_model_bench});
}

}  // namespace medgpt::app
