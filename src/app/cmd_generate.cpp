// `medgpt generate`: JSONL prompts in, JSONL answers out (MedicalGPT's batch inference). Each line
// has `input_ids` (raw ids), or `prompt` / `messages` / `question` (rendered with the chat
// template; data/readers/prompt_reader.hpp); the output line keeps its fields and adds `output_ids` and `output`. With several
// MPI ranks each takes every size-th line; rank 0 writes them back in input order.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "app/generation_setup.hpp"
#include "data/chat_template.hpp"
#include "data/readers/prompt_reader.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "parallel/agreement.hpp"
#include "parallel/grid.hpp"
#include "infer/generator.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

namespace fs = std::filesystem;

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
  const std::int64_t batch = std::max<std::int64_t>(1, vm["batch-size"].as<std::int64_t>());
  std::vector<std::string> lines;
  {
    std::ifstream in(input);
    if (!in) util::fail(input, "cannot open", "check the path");
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) lines.push_back(l);
  }
  const data::Tokenizer tok = load_inference_tokenizer(vm);
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

  parallel::Grid grid(1, 1);
  parallel::Comm& world = grid.world();
  model::Transformer m = load_inference_model(vm);
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
  world.barrier();  // every part written
  parallel::on_root(world, [&] {  // merge the ranks' parts in input order
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
  });
  return 0;
}

}  // namespace

void register_generate_command(std::vector<Command>& out) {
  out.push_back({"generate", "batch inference: JSONL prompts (input_ids | prompt | messages) -> JSONL with output_ids and output",
                 [](po::options_description& d) {
                   d.add_options()
                       ("input", po::value<std::string>(), "JSONL prompts (required)")
                       ("output", po::value<std::string>(), "JSONL answers (required)")
                       ("batch-size", at_least<std::int64_t>(1)->default_value(8), "prompts generated together");
                   add_generation_options(d);
                 },
                 run_generate});
}

}  // namespace medgpt::app
