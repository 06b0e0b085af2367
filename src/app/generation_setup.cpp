#include "app/bounded_value.hpp"
#include "app/generation_setup.hpp"

#include "model/checkpoint.hpp"
#include "model/lora.hpp"
#include "model/nf4.hpp"
#include "util/error.hpp"
#include "util/json.hpp"

namespace medgpt::app {

void add_generation_options(po::options_description& d) {
  d.add_options()
      ("model", po::value<std::string>(), "Hugging Face folder, medgpt checkpoint or a run's final/ (required)")
      ("adapter", po::value<std::string>(), "a LoRA adapter folder (PEFT format) applied on top")
      ("tokenizer", po::value<std::string>(), "tokenizer folder (default: --model)")
      ("template", po::value<std::string>()->default_value("qwen"), "chat template for prompts and messages")
      ("system", po::value<std::string>(), "system prompt (default: the template's)")
      ("dtype", po::value<std::string>()->default_value("fp32"), "fp32 or bf16")
      ("nf4", po::value<bool>()->default_value(false)->implicit_value(true), "hold the linear weights in NF4 (4-bit, as QLoRA loads them)")
      ("max-new-tokens", at_least<std::int64_t>(1)->default_value(256), "new tokens per answer at most")
      ("do-sample", po::value<bool>()->default_value(false)->implicit_value(true), "sample (default: generation_config.json, else greedy)")
      ("temperature", non_negative<double>()->default_value(1.0), "softmax temperature (0: greedy)")
      ("top-p", (new BoundedValue<double>(0.0, 1.0, /*lo_open=*/true, /*hi_open=*/false))->default_value(1.0), "nucleus sampling mass")
      ("top-k", non_negative<std::int64_t>()->default_value(0), "keep the k most likely tokens (0: off)")
      ("min-p", in_range(0.0, 1.0)->default_value(0.0), "drop tokens below min_p x the top probability")
      ("repetition-penalty", positive()->default_value(1.0), "CTRL repetition penalty (1: off)")
      ("seed", non_negative<std::uint64_t>()->default_value(42), "sampling seed");
}

model::Transformer load_inference_model(const po::variables_map& vm) {
  const std::string dir = required(vm, "model");
  if (!util::is_directory(dir)) util::fail("--model", dir + ": no such folder", "pass a Hugging Face folder, a checkpoint or a run's final/");
  const at::ScalarType dtype = model::parse_dtype(vm["dtype"].as<std::string>());
  model::Transformer m(model::ModelConfig::load(dir), at::kFloat);
  m.load(model::read_model_weights(dir), dir);
  if (flag(vm, "nf4")) model::quantize_nf4(m, /*double_quant=*/true);  // from the fp32 weights
  if (dtype != at::kFloat) m.set_compute_dtype(dtype);
  if (vm.count("adapter")) model::load_lora(m, vm["adapter"].as<std::string>(), at::kFloat);
  return m;
}

data::Tokenizer load_inference_tokenizer(const po::variables_map& vm) {
  return data::Tokenizer::load(vm.count("tokenizer") ? vm["tokenizer"].as<std::string>() : required(vm, "model"));
}

infer::GenerationOptions generation_options(const po::variables_map& vm, const std::string& model_dir, const data::Tokenizer& tok,
                                            const data::ChatTemplate* tmpl) {
  infer::GenerationOptions o;
  nlohmann::json gc = nlohmann::json::object();
  if (util::file_exists(model_dir + "/generation_config.json")) gc = util::read_json_file(model_dir + "/generation_config.json");
  auto pick = [&](const char* opt, const char* key, auto fallback) {
    using T = decltype(fallback);
    if (!vm[opt].defaulted()) return vm[opt].as<T>();
    return gc.contains(key) && !gc[key].is_null() ? gc[key].get<T>() : fallback;
  };
  o.sampling.temperature = pick("temperature", "temperature", 1.0);
  o.sampling.top_p = pick("top-p", "top_p", 1.0);
  o.sampling.top_k = pick("top-k", "top_k", std::int64_t{0});
  o.sampling.min_p = pick("min-p", "min_p", 0.0);
  o.sampling.repetition_penalty = pick("repetition-penalty", "repetition_penalty", 1.0);
  o.sampling.do_sample = pick("do-sample", "do_sample", false) && o.sampling.temperature > 0;
  o.max_new_tokens = vm["max-new-tokens"].as<std::int64_t>();
  o.seed = vm["seed"].as<std::uint64_t>();
  if (gc.contains("eos_token_id")) {
    if (gc["eos_token_id"].is_array()) for (const auto& e : gc["eos_token_id"]) o.eos_ids.push_back(e.get<std::int64_t>());
    else if (gc["eos_token_id"].is_number()) o.eos_ids.push_back(gc["eos_token_id"].get<std::int64_t>());
  }
  if (tok.eos_id()) o.eos_ids.push_back(*tok.eos_id());
  if (tmpl)  // the template's end-of-turn strings that are single tokens
    for (const auto& s : tmpl->stop_strings())
      if (const auto id = tok.token_to_id(s); id >= 0) o.eos_ids.push_back(id);
  o.pad_id = tok.pad_id().value_or(tok.eos_id().value_or(0));
  return o;
}

}  // namespace medgpt::app
