// `medgpt memory`:
//   --dp N: per-rank memory of a training run for ZeRO stages 0 to 3 at that data-parallel size
//   (weights, gradients, optimizer state, activations), and how the model and optimizer state
//   compare with one rank without ZeRO. The arithmetic is plan's (train/plan.hpp);
//   tools/bench-memory.sh measures the same runs.
//   --weights: the resident memory of a random model's weights held in fp32, bf16, or with NF4
//   linear layers (QLoRA), measured.
#include <ATen/ATen.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "app/plan_options.hpp"
#include "model/lora.hpp"
#include "model/nf4.hpp"
#include "model/tp_plan.hpp"
#include "model/transformer.hpp"
#include "train/plan.hpp"
#include "util/error.hpp"

namespace medgpt::app {

namespace {

std::int64_t resident_bytes() {
  ::malloc_trim(0);
  std::ifstream in("/proc/self/statm");
  std::int64_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

std::int64_t tensor_bytes(const model::Transformer& m) {
  std::int64_t b = 0;
  for (const auto& [n, t] : m.named_parameters()) b += t.numel() * static_cast<std::int64_t>(t.element_size());
  for (const auto& [n, t] : model::lora_parameters(m)) b += t.numel() * static_cast<std::int64_t>(t.element_size());
  for (const auto& blk : m.blocks())
    for (const model::Linear* l : {&blk.q, &blk.k, &blk.v, &blk.o, &blk.gate, &blk.up, &blk.down})
      if (l->nf4) b += l->nf4->bytes();
  return b;
}

model::ModelConfig qwen25_05b_shape() {
  // Qwen2.5-0.5B's config.json (the shapes; the weights here are random).
  const nlohmann::json j = {{"model_type", "qwen2"},
                            {"vocab_size", 151936},
                            {"hidden_size", 896},
                            {"intermediate_size", 4864},
                            {"num_hidden_layers", 24},
                            {"num_attention_heads", 14},
                            {"num_key_value_heads", 2},
                            {"max_position_embeddings", 32768},
                            {"rms_norm_eps", 1e-6},
                            {"rope_theta", 1000000.0},
                            {"tie_word_embeddings", true},
                            {"torch_dtype", "bfloat16"}};
  return model::ModelConfig::from_json(j, "Qwen2.5-0.5B shape");
}

int run_weights(const po::variables_map& vm) {
  // Large blocks come from mmap and go back to the system when freed, so each row's resident
  // growth is its own (glibc's dynamic threshold would otherwise keep freed blocks in the heap).
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  const model::ModelConfig config = vm.count("model") ? model::ModelConfig::load(vm["model"].as<std::string>()) : qwen25_05b_shape();
  const std::string shape = vm.count("model") ? vm["model"].as<std::string>() : "Qwen2.5-0.5B shape";
  const std::int64_t rank = vm["lora-rank"].as<std::int64_t>();
  std::printf("%s: %.1fM parameters (hidden %lld, intermediate %lld, %lld layers, %lld heads, %lld kv heads, vocab %lld%s)\n",
              shape.c_str(), config.num_parameters() / 1e6, (long long)config.hidden_size, (long long)config.intermediate_size,
              (long long)config.num_layers, (long long)config.num_heads, (long long)config.num_kv_heads, (long long)config.vocab_size,
              config.tie_word_embeddings ? ", tied embeddings" : "");
  std::printf("%-44s %12s %12s %10s %8s\n", "weights", "tensors MiB", "resident MiB", "vs fp32", "build s");
  double fp32_bytes = 0;
  struct Row {
    const char* name;
    at::ScalarType dtype;
    bool nf4;
    bool lora;
  };
  const std::string lora_row = "NF4 linear + bf16 rest + LoRA r" + std::to_string(rank) + " fp32 (QLoRA)";
  for (const Row& row : {Row{"fp32", at::kFloat, false, false}, Row{"bf16", at::kBFloat16, false, false},
                         Row{"NF4 linear (double-quant) + bf16 rest", at::kBFloat16, true, false},
                         Row{lora_row.c_str(), at::kBFloat16, true, true}}) {
    if (row.lora && rank <= 0) continue;
    const std::int64_t before = resident_bytes();
    const auto t0 = std::chrono::steady_clock::now();
    std::int64_t tensors = 0, resident = 0;
    {
      model::Transformer m(config, row.dtype);
      m.init_random(1234);
      if (row.nf4) model::quantize_nf4(m, /*double_quant=*/true);
      if (row.lora) {
        model::LoraConfig c;
        c.r = rank;
        model::apply_lora(m, c, 1);
      }
      tensors = tensor_bytes(m);
      resident = resident_bytes() - before;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (fp32_bytes == 0) fp32_bytes = static_cast<double>(resident);
    std::printf("%-44s %12.1f %12.1f %9.1f%% %8.1f\n", row.name, tensors / 1048576.0, resident / 1048576.0,
                100.0 * resident / fp32_bytes, secs);
    std::fflush(stdout);
  }
  return 0;
}

int run_memory(const po::variables_map& vm) {
  if (flag(vm, "weights")) return run_weights(vm);
  train::PlanInputs in = run_shape(vm);
  if (!vm.count("dp")) util::fail("--dp", "missing", "pass the data-parallel size, e.g. --dp 4");
  const int dp = vm["dp"].as<int>(), tp = vm["tp"].as<int>(), pp = vm["pp"].as<int>();
  model::check_tp(in.config, tp);
  if (pp > in.config.num_layers) util::fail("--pp", std::to_string(pp) + " stages for " + std::to_string(in.config.num_layers) + " layers", "use at most one stage per layer");
  in.world = dp * tp * pp;
  in.global_batch = in.micro_batch * dp;
  const std::string attn = vm["attn"].as<std::string>();
  if (attn != "eager" && attn != "chunked") util::fail("--attn", "\"" + attn + "\" is not eager or chunked", "use eager or chunked");
  in.chunked_attention = attn == "chunked";
  const bool ckpt = flag(vm, "checkpointing");

  const train::PlanRow one = train::plan_row(in, {tp, pp, 1, 0, ckpt});
  const double state_one = one.weights + one.grads + one.optimizer;
  nlohmann::ordered_json json = nlohmann::ordered_json::array();
  if (!flag(vm, "json")) {
    std::printf("memory per rank: %s %.2fB parameters, dp %d (tp %d, pp %d), T=%lld, micro-batch %lld, %s, %s, %s attention%s\n",
                in.config.model_type.c_str(), static_cast<double>(in.config.num_parameters()) / 1e9, dp, tp, pp,
                static_cast<long long>(in.seq_len), static_cast<long long>(in.micro_batch), in.bf16 ? "bf16" : "fp32", in.trainable.c_str(),
                attn.c_str(), ckpt ? ", activation checkpointing" : "");
    std::printf("  %4s | %8s %8s %8s %8s %8s GiB | %s\n", "zero", "weights", "grads", "optim", "activ", "total",
                "weights+grads+optim vs 1 rank without ZeRO");
  }
  for (int zero = 0; zero <= 3; ++zero) {
    if (zero >= 2 && pp > 1) continue;  // refused with pipeline stages (train/zero_units.hpp)
    const train::PlanRow r = train::plan_row(in, {tp, pp, dp, zero, ckpt});
    const double share = (r.weights + r.grads + r.optimizer) / state_one;
    if (flag(vm, "json")) {
      json.push_back({{"zero", zero}, {"dp", dp}, {"tp", tp}, {"pp", pp}, {"weights_bytes", r.weights}, {"grads_bytes", r.grads},
                      {"optimizer_bytes", r.optimizer}, {"activations_bytes", r.activations}, {"total_bytes", r.total()},
                      {"state_vs_one_rank", share}});
    } else {
      std::printf("  %4d | %8.2f %8.2f %8.2f %8.2f %8.2f     | %5.1f%%\n", zero, gib(r.weights), gib(r.grads), gib(r.optimizer),
                  gib(r.activations), gib(r.total()), 100 * share);
    }
  }
  if (flag(vm, "json")) std::printf("%s\n", json.dump().c_str());
  return 0;
}

}  // namespace

void register_memory_command(std::vector<Command>& out) {
  out.push_back({"memory", "memory per rank of a training run for ZeRO stages 0-3 at a data-parallel size (predicted); --weights: a model's weights in fp32, bf16, NF4 (measured)",
                 [](po::options_description& d) {
                   add_run_shape_options(d);
                   d.add_options()
                       ("dp", at_least(1), "data-parallel size (required unless --weights)")
                       ("tp", at_least(1)->default_value(1), "tensor-parallel size")
                       ("pp", at_least(1)->default_value(1), "pipeline stages (ZeRO-2/3 need 1)")
                       ("attn", po::value<std::string>()->default_value("eager"), "eager or chunked (--model.attn_implementation)")
                       ("checkpointing", po::value<bool>()->default_value(false)->implicit_value(true), "activation checkpointing")
                       ("weights", po::value<bool>()->default_value(false)->implicit_value(true), "measure a random model's weights in fp32, bf16, NF4 instead")
                       ("lora-rank", non_negative<std::int64_t>()->default_value(8), "--weights: rank of the LoRA adapters in the QLoRA row (0: no row)");
                 },
                 run_memory});
}

}  // namespace medgpt::app
