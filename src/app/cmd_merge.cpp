// The LoRA family's commands:
//   `medgpt merge`: a PEFT LoRA adapter folded into its base model (W <- W + scale * B @ A), written
//   as a Hugging Face folder (config.json, generation_config.json and tokenizer files copied).
//   `medgpt memory`: resident memory of a model's weights held in fp32, bf16, or with NF4 linear
//   layers (QLoRA), for a random model of a given shape (default Qwen2.5-0.5B's).
#include <ATen/ATen.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "model/checkpoint.hpp"
#include "model/lora.hpp"
#include "model/nf4.hpp"
#include "model/safetensors.hpp"
#include "model/transformer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

namespace fs = std::filesystem;

const char* hf_dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: return "float32";
  }
}

int run_merge(const po::variables_map& vm) {
  const std::string base = required(vm, "base"), adapter = required(vm, "adapter"), output = required(vm, "output");
  const model::ModelConfig config = model::ModelConfig::load(base);
  const std::string dtype_name = vm["dtype"].as<std::string>();
  const at::ScalarType dtype = model::parse_dtype(dtype_name == "auto" ? config.dtype : dtype_name);
  std::error_code ec;
  if (fs::exists(output) && fs::equivalent(output, base, ec))
    util::fail("--output", output + " is the base model folder", "write the merged model to a new folder");

  // Merge in fp32 (exact for bf16/fp16 bases), round once to the output dtype.
  model::Transformer m = model::Transformer::from_pretrained(base, at::kFloat);
  const model::LoraConfig lora = model::load_lora(m, adapter, at::kFloat);
  const std::size_t adapted = model::lora_parameters(m).size() / 2;
  model::merge_lora(m);

  fs::create_directories(output);
  // Weights from an earlier run in the same folder would be read back beside the new ones.
  for (const auto& e : fs::directory_iterator(output)) {
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, std::regex(R"(model(-\d+-of-\d+)?\.safetensors(\.index\.json)?)"))) fs::remove(e.path());
  }
  model::NamedTensors tensors;
  for (const auto& [name, t] : m.named_parameters()) tensors.emplace_back(name, t.detach().to(dtype).contiguous());
  model::write_safetensors_dir(output, tensors);

  if (dtype_name == "auto" || hf_dtype_name(dtype) == config.dtype) {
    fs::copy_file(base + "/config.json", output + "/config.json", fs::copy_options::overwrite_existing);
  } else {
    nlohmann::json j = util::read_json_file(base + "/config.json");
    bool set = false;
    for (const char* key : {"dtype", "torch_dtype"})
      if (j.contains(key)) j[key] = hf_dtype_name(dtype), set = true;
    if (!set) j["torch_dtype"] = hf_dtype_name(dtype);
    util::write_file_atomic(output + "/config.json", j.dump(2) + "\n");
  }
  model::copy_tokenizer_files(base, output);
  if (util::file_exists(base + "/generation_config.json"))
    fs::copy_file(base + "/generation_config.json", output + "/generation_config.json", fs::copy_options::overwrite_existing);

  char scale[32];
  std::snprintf(scale, sizeof scale, "%g", lora.scale());
  util::log("merged " + std::to_string(adapted) + " LoRA adapters (r " + std::to_string(lora.r) + ", scale " + scale + ") into " +
            base + " -> " + output + " (" + hf_dtype_name(dtype) + ", " + std::to_string(tensors.size()) + " tensors)");
  return 0;
}

// ---- memory ----

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

int run_memory(const po::variables_map& vm) {
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

}  // namespace

void register_lora_commands(std::vector<Command>& out) {
  out.push_back({"merge", "fold a PEFT LoRA adapter into its base model, written as a Hugging Face folder",
                 [](po::options_description& d) {
                   d.add_options()
                       ("base", po::value<std::string>(), "base Hugging Face model folder (required)")
                       ("adapter", po::value<std::string>(), "PEFT adapter folder: adapter_config.json + adapter_model.safetensors (required)")
                       ("output", po::value<std::string>(), "output Hugging Face model folder (required)")
                       ("dtype", po::value<std::string>()->default_value("auto"), "output weights: auto (the base's dtype), fp32, bf16 or fp16");
                 },
                 run_merge});
  out.push_back({"memory", "resident memory of a random model's weights: fp32, bf16, NF4 (QLoRA)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("model", po::value<std::string>(), "folder (or config.json) giving the shape; default Qwen2.5-0.5B's")
                       ("lora-rank", non_negative<std::int64_t>()->default_value(8), "rank of the LoRA adapters on every linear layer in the QLoRA row (0: no row)");
                 },
                 run_memory});
}

}  // namespace medgpt::app
