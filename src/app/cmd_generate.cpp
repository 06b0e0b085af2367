// `medgpt generate`: JSONL prompts in, JSONL answers out (MedicalGPT's batch inference). Each line
// has `input_ids` (raw ids), or `prompt` / `messages` / `question` (rendered with the chat
// template; data/readers/prompt_reader.hpp); the output line keeps its fields and adds `output_ids` and `output`. With several
// MPI ranks each takes every size-th line; rank 0 writes them back in input order.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/command.hpp"
#include "data/chat_template.hpp"
#include "data/readers/prompt_reader.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "dist/grid.hpp"
#include "infer/generator.hpp"
#include "model/checkpoint.hpp"
#include "model/lora.hpp"
#include "model/transformer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

namespace fs = std::filesystem;

// Generation defaults: the model's generation_config.json, then the command line.
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

std::vector<std::int64_t> prompt_ids(const nlohmann::json& rec, const std::string& where, const data::Tokenizer& tok,
                                     const data::ChatTemplate& tmpl, const data::RenderOptions& ro) {
  if (rec.contains("input_ids")) {
    std::vector<std::int64_t> ids;
    for (const auto& v : rec["input_ids"]) {
      if (!v.is_number_integer()) util::fail(where + ": input_ids", "holds a non-integer", "give token ids");
      ids.push_back(v.get<std::int64_t>());
    }
    return ids;
  }
  // prompt / messages / question (+ options): the RL and evaluation prompt reader.
  const std::string text = tmpl.render(data::parse_prompt(rec, where).prompt, ro).text;
  const auto ids = tok.encode(text);
  return {ids.begin(), ids.end()};
}

int run_generate(const po::variables_map& vm) {
  const std::string model_dir = required(vm, "model"), input = required(vm, "input"), output = required(vm, "output");
  const at::ScalarType dtype = model::parse_dtype(vm["dtype"].as<std::string>());
  const std::int64_t batch = std::max<std::int64_t>(1, vm["batch-size"].as<std::int64_t>());
  if (!util::is_directory(model_dir)) util::fail("--model", model_dir + ": no such folder", "pass a Hugging Face folder, a checkpoint or a run's final/");
  std::vector<std::string> lines;
  {
    std::ifstream in(input);
    if (!in) util::fail(input, "cannot open", "check the path");
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) lines.push_back(l);
  }
  const std::string tok_dir = vm.count("tokenizer") ? vm["tokenizer"].as<std::string>() : model_dir;
  const data::Tokenizer tok = data::Tokenizer::load(tok_dir);
  const data::ChatTemplate& tmpl = data::ChatTemplate::get(vm["template"].as<std::string>());
  data::RenderOptions ro;
  ro.add_generation_prompt = true;
  if (vm.count("system")) ro.system = vm["system"].as<std::string>();
  // Every line is checked before the model is loaded.
  std::vector<std::vector<std::int64_t>> prompts;
  std::vector<nlohmann::ordered_json> records;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string where = input + ":" + std::to_string(i + 1);
    nlohmann::ordered_json rec;
    try {
      rec = nlohmann::ordered_json::parse(lines[i]);
    } catch (const nlohmann::json::exception&) {
      util::fail(where, "is not JSON", "one JSON object per line");
    }
    if (!rec.is_object()) util::fail(where, "is not a JSON object", "one JSON object per line");
    prompts.push_back(prompt_ids(nlohmann::json(rec), where, tok, tmpl, ro));
    records.push_back(std::move(rec));
  }
  const infer::GenerationOptions go = generation_options(vm, model_dir, tok, &tmpl);

  dist::Grid grid(1, 1);
  dist::Comm& world = grid.world();
  model::Transformer m(model::ModelConfig::load(model_dir), dtype);
  m.load(model::read_model_weights(model_dir), model_dir);
  if (vm.count("adapter")) model::load_lora(m, vm["adapter"].as<std::string>(), at::kFloat);
  for (const auto& p : prompts)
    for (const auto id : p)
      if (id < 0 || id >= m.config().vocab_size)
        util::fail(input, "token id " + std::to_string(id) + " is outside the model's vocabulary", "use the model's tokenizer");

  // This rank's lines, in batches.
  std::vector<std::size_t> mine;
  for (std::size_t i = static_cast<std::size_t>(world.rank()); i < prompts.size(); i += static_cast<std::size_t>(world.size())) mine.push_back(i);
  const std::string part = output + ".part" + std::to_string(world.rank());
  std::ofstream out(part, std::ios::trunc);
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t new_tokens = 0;
  for (std::size_t first = 0; first < mine.size(); first += static_cast<std::size_t>(batch)) {
    std::vector<std::vector<std::int64_t>> group;
    const std::size_t last = std::min(mine.size(), first + static_cast<std::size_t>(batch));
    for (std::size_t k = first; k < last; ++k) group.push_back(prompts[mine[k]]);
    const auto answers = infer::generate(m, group, go);
    for (std::size_t k = first; k < last; ++k) {
      nlohmann::ordered_json rec = records[mine[k]];
      const auto& ids = answers[k - first];
      new_tokens += static_cast<std::int64_t>(ids.size());
      rec["output_ids"] = ids;
      rec["output"] = tok.decode(std::vector<data::TokenId>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
      out << mine[k] << "\t" << rec.dump() << "\n";
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char buf[128];
    std::snprintf(buf, sizeof buf, "generate: %zu/%zu prompts, %.1f new tokens/s", last, mine.size(), static_cast<double>(new_tokens) / s);
    util::log_progress(buf);
  }
  util::log_end_line();
  out.close();
  world.barrier();
  if (world.rank() == 0) {  // merge the ranks' parts in input order
    std::vector<std::string> merged(prompts.size());
    for (int r = 0; r < world.size(); ++r) {
      const std::string p = output + ".part" + std::to_string(r);
      std::ifstream in(p);
      for (std::string l; std::getline(in, l);) {
        const auto tab = l.find('\t');
        merged[std::stoull(l.substr(0, tab))] = l.substr(tab + 1);
      }
      fs::remove(p);
    }
    std::string text;
    for (const auto& l : merged) text += l + "\n";
    util::write_file_atomic(output, text);
    util::log("generated " + std::to_string(prompts.size()) + " answers -> " + output);
  }
  world.barrier();
  return 0;
}

}  // namespace

void register_generate_command(std::vector<Command>& out) {
  out.push_back({"generate", "batch inference: JSONL prompts (input_ids | prompt | messages) -> JSONL with output_ids and output",
                 [](po::options_description& d) {
                   d.add_options()
                       ("model", po::value<std::string>(), "Hugging Face folder, medgpt checkpoint or a run's final/ (required)")
                       ("adapter", po::value<std::string>(), "a LoRA adapter folder (PEFT format) applied on top")
                       ("tokenizer", po::value<std::string>(), "tokenizer folder (default: --model)")
                       ("input", po::value<std::string>(), "JSONL prompts (required)")
                       ("output", po::value<std::string>(), "JSONL answers (required)")
                       ("template", po::value<std::string>()->default_value("qwen"), "chat template for prompt/messages lines")
                       ("system", po::value<std::string>(), "system prompt (default: the template's)")
                       ("dtype", po::value<std::string>()->default_value("fp32"), "fp32 or bf16")
                       ("batch-size", po::value<std::int64_t>()->default_value(8), "prompts generated together")
                       ("max-new-tokens", po::value<std::int64_t>()->default_value(256), "new tokens per answer at most")
                       ("do-sample", po::value<bool>()->default_value(false)->implicit_value(true), "sample (default: generation_config.json, else greedy)")
                       ("temperature", po::value<double>()->default_value(1.0), "softmax temperature (0: greedy)")
                       ("top-p", po::value<double>()->default_value(1.0), "nucleus sampling mass")
                       ("top-k", po::value<std::int64_t>()->default_value(0), "keep the k most likely tokens (0: off)")
                       ("min-p", po::value<double>()->default_value(0.0), "drop tokens below min_p x the top probability")
                       ("repetition-penalty", po::value<double>()->default_value(1.0), "CTRL repetition penalty (1: off)")
                       ("seed", po::value<std::uint64_t>()->default_value(42), "sampling seed");
                 },
                 run_generate});
}

}  // namespace medgpt::app
