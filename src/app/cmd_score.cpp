// `medgpt score --model RM --input pairs.jsonl`: a reward model's rewards for preference pairs
// (MedicalGPT's or TRL's format), one JSON line per pair on stdout or --output:
//   {"where": "file:line", "chosen": r_c, "rejected": r_r, "margin": r_c - r_r}
// and on stderr the pairs' accuracy (r_c > r_r) and mean margin. Sequences are tokenized as the rm
// stage trains on them (prompt + answer with the chat template) and scored at their last token.
#include <ATen/ATen.h>

#include <cstdio>
#include <fstream>

#include "align/reward.hpp"
#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "data/chat_template.hpp"
#include "data/loader.hpp"
#include "data/pair_encoding.hpp"
#include "data/pair_rows.hpp"
#include "data/readers/readers.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "model/checkpoint.hpp"
#include "model/lora.hpp"
#include "model/transformer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

int run_score(const po::variables_map& vm) {
  const std::string dir = required(vm, "model");
  if (!util::is_directory(dir)) util::fail("--model", dir + ": no such folder", "pass a reward model folder (medgpt train --stage rm's final/)");
  model::ModelConfig config = model::ModelConfig::load(dir);
  // A LoRA reward model: the causal-LM base becomes a classifier whose head the adapter carries.
  const std::string adapter = vm.count("adapter") ? vm["adapter"].as<std::string>() : "";
  const bool adapter_head = !adapter.empty() && config.num_labels == 0 && model::is_reward_adapter(adapter);
  if (adapter_head) config.make_reward_model();
  if (config.num_labels != 1)
    util::fail(dir + "/config.json", "is not a reward model (architectures *ForSequenceClassification with one label)",
               "train one with medgpt train --stage rm, and pass its final/ (or, for LoRA, the base with --adapter final/)");
  if (!vm.count("input")) util::fail("--input", "missing", "pass preference files (JSONL) or folders");
  const std::vector<std::string> files = data::expand_record_inputs(vm["input"].as<std::vector<std::string>>(), data::Kind::Pref);
  const data::Tokenizer tok = data::Tokenizer::load(vm.count("tokenizer") ? vm["tokenizer"].as<std::string>() : dir);
  const data::ChatTemplate& tmpl = data::ChatTemplate::get(vm["template"].as<std::string>());
  const data::PairEncodeOptions enc{vm["max-length"].as<std::size_t>(), vm["max-prompt-length"].as<std::size_t>()};
  const std::size_t batch = std::max<std::size_t>(1, vm["batch-size"].as<std::size_t>());

  // Every record is read and tokenized before the model is loaded: bad input fails fast. The
  // columns become rows exactly as the rm stage trains on them (data::pair_rows).
  data::ColumnSplit columns;
  for (const auto& name : data::column_names(data::Kind::Pref)) columns[name];
  std::vector<std::string> where;
  for (const auto& f : files)
    data::for_each_record(f, data::Kind::Pref, data::PtDocSep::Line, [&](const nlohmann::json& rec, const std::string& at) {
      const data::PrefRecord p = data::parse_pref(rec, at);
      const data::EncodedPrompt prompt = data::encode_prompt(tok, tmpl, p.prompt, enc);
      columns["prompt"].append(prompt.ids);
      columns["chosen"].append(data::encode_response(tok, tmpl, p.prompt, p.chosen, prompt.ids.size(), enc).ids);
      columns["rejected"].append(data::encode_response(tok, tmpl, p.prompt, p.rejected, prompt.ids.size(), enc).ids);
      where.push_back(at);
    });
  const data::TokenArrays rows = data::pair_rows(columns);  // 2i: prompt + chosen, 2i+1: prompt + rejected
  const std::size_t longest = rows.longest();
  for (std::uint32_t t : rows.tokens)
    if (static_cast<std::int64_t>(t) >= config.vocab_size)
      util::fail(dir, "the tokenizer gives id " + std::to_string(t) + " beyond the model's vocabulary of " + std::to_string(config.vocab_size),
                 "pass the reward model's own tokenizer (--tokenizer)");

  model::Transformer m(config, at::kFloat);
  model::NamedTensors weights = model::read_model_weights(dir);
  if (adapter_head) weights.emplace_back("score.weight", at::zeros({1, config.hidden_size}));  // from the adapter below
  m.load(weights, dir);
  if (!adapter.empty()) model::load_lora(m, adapter, at::kFloat);
  const at::ScalarType dtype = model::parse_dtype(vm["dtype"].as<std::string>());
  if (dtype != at::kFloat) m.set_compute_dtype(dtype);
  at::NoGradGuard no_grad;

  std::string out;
  double correct = 0, margin_sum = 0;
  const std::size_t pairs = where.size();
  for (std::size_t first = 0; first < pairs; first += batch) {
    std::vector<std::int64_t> samples;  // [chosen..., rejected...] of this batch's pairs
    const std::size_t n = std::min(batch, pairs - first);
    for (std::size_t k = 0; k < 2; ++k)
      for (std::size_t i = first; i < first + n; ++i) samples.push_back(static_cast<std::int64_t>(2 * i + k));
    const at::Tensor r = align::sequence_rewards(m, data::batch_of(rows, data::Kind::Sft, samples, longest, 0)).to(at::kDouble);
    for (std::size_t i = 0; i < n; ++i) {
      const double c = r[static_cast<std::int64_t>(i)].item<double>(), j = r[static_cast<std::int64_t>(n + i)].item<double>();
      correct += c > j;
      margin_sum += c - j;
      out += nlohmann::ordered_json{{"where", where[first + i]}, {"chosen", c}, {"rejected", j}, {"margin", c - j}}.dump() + "\n";
    }
  }
  if (vm.count("output")) util::write_file_atomic(vm["output"].as<std::string>(), out);
  else std::fwrite(out.data(), 1, out.size(), stdout);
  char buf[200];
  std::snprintf(buf, sizeof buf, "scored %zu pairs: accuracy %.4f (chosen > rejected), mean margin %.4f", pairs,
                correct / static_cast<double>(std::max<std::size_t>(1, pairs)), margin_sum / static_cast<double>(std::max<std::size_t>(1, pairs)));
  util::log(buf);
  return 0;
}

}  // namespace

void register_score_command(std::vector<Command>& out) {
  out.push_back({"score", "a reward model's rewards for preference pairs (JSONL out: chosen, rejected, margin)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("model", po::value<std::string>(), "reward model folder (medgpt train --stage rm's final/), or the base of --adapter (required)")
                       ("adapter", po::value<std::string>(), "a LoRA reward model's adapter (PEFT SEQ_CLS, with its score head) on --model")
                       ("input", po::value<std::vector<std::string>>()->multitoken(), "preference files or folders: MedicalGPT's or TRL's format (required)")
                       ("output", po::value<std::string>(), "JSONL output (default: stdout)")
                       ("tokenizer", po::value<std::string>(), "tokenizer folder (default: --model)")
                       ("template", po::value<std::string>()->default_value("qwen"), "chat template (as the rm stage was trained)")
                       ("max-length", at_least<std::size_t>(1)->default_value(1024), "prompt + answer tokens (answers cut to fit)")
                       ("max-prompt-length", non_negative<std::size_t>()->default_value(0), "prompt tokens kept (the end); 0 = no limit")
                       ("batch-size", at_least<std::size_t>(1)->default_value(8), "pairs per forward pass")
                       ("dtype", po::value<std::string>()->default_value("fp32"), "fp32 or bf16");
                 },
                 run_score});
}

}  // namespace medgpt::app
