#include "app/plan_options.hpp"

#include "app/command.hpp"
#include "util/error.hpp"

namespace medgpt::app {

void add_run_shape_options(po::options_description& d) {
  d.add_options()
      ("model", po::value<std::string>(), "a config.json or a Hugging Face model folder (required; memory --weights: default Qwen2.5-0.5B's shape)")
      ("seq-len", at_least<std::int64_t>(1)->default_value(2048), "tokens per row")
      ("micro-batch", at_least<std::int64_t>(1)->default_value(1), "rows per rank and micro-batch")
      ("precision", po::value<std::string>()->default_value("bf16"), "bf16 or fp32")
      ("lora", po::value<bool>()->default_value(false)->implicit_value(true), "LoRA on every linear layer of the blocks")
      ("qlora", po::value<bool>()->default_value(false)->implicit_value(true), "QLoRA: LoRA over an NF4 base")
      ("lora-r", at_least<std::int64_t>(1)->default_value(8), "LoRA rank")
      ("json", po::value<bool>()->default_value(false)->implicit_value(true), "one JSON array instead of the table");
}

train::PlanInputs run_shape(const po::variables_map& vm) {
  train::PlanInputs in;
  in.config = model::ModelConfig::load(required(vm, "model"));
  in.seq_len = vm["seq-len"].as<std::int64_t>();
  in.micro_batch = vm["micro-batch"].as<std::int64_t>();
  const std::string precision = vm["precision"].as<std::string>();
  if (precision != "bf16" && precision != "fp32") util::fail("--precision", "\"" + precision + "\" is not bf16 or fp32", "use bf16 or fp32");
  in.bf16 = precision == "bf16";
  in.trainable = flag(vm, "qlora") ? "qlora" : flag(vm, "lora") ? "lora" : "full";
  in.lora_r = vm["lora-r"].as<std::int64_t>();
  return in;
}

}  // namespace medgpt::app
