// `medgpt merge`: a PEFT LoRA adapter folded into its base model (W <- W + scale * B @ A), written
// as a Hugging Face folder (config.json, generation_config.json and tokenizer files copied).
#include <ATen/ATen.h>

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
}

}  // namespace medgpt::app
