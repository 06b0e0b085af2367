// `medgpt prepare`: raw files -> tokenized HDF5 corpus, MPI-parallel (app/prepare_corpus.hpp).
#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "app/prepare_corpus.hpp"
#include "parallel/grid.hpp"
#include "util/error.hpp"

namespace medgpt::app {

namespace {

int run_prepare(const po::variables_map& vm) {
  PrepareOptions o;
  o.kind = data::parse_kind(required(vm, "kind"));
  o.doc_sep = data::parse_doc_sep(vm["pt.doc_sep"].as<std::string>());
  o.max_length = vm["max-length"].as<std::size_t>();
  o.max_prompt_length = vm["max-prompt-length"].as<std::size_t>();
  o.block_size = vm["block-size"].as<std::size_t>();
  o.drop_tail = flag(vm, "pt.drop_tail");
  o.train_on_inputs = flag(vm, "train-on-inputs");
  o.skip_bad = flag(vm, "skip-bad-records");
  o.validation_split = vm["validation-split"].as<std::string>();
  o.seed = vm["seed"].as<std::uint64_t>();
  if (!vm.count("input")) util::fail("--input", "missing", "name the input files or folders");
  const std::string output = required(vm, "output");
  if (o.kind == data::Kind::Pt && o.block_size == 0) util::fail("--block-size", "must be positive", "e.g. --block-size 1024");

  parallel::Grid grid(1, 1);
  prepare_corpus(grid.world(), o, vm["input"].as<std::vector<std::string>>(), required(vm, "tokenizer"), vm["template"].as<std::string>(), output);
  return 0;
}

}  // namespace

void register_prepare_command(std::vector<Command>& out) {
  out.push_back({"prepare", "raw files -> tokenized HDF5 corpus (MPI-parallel): pt, sft, pref, kto, prompt",
                 [](po::options_description& d) {
                   d.add_options()
                       ("kind", po::value<std::string>(), "pt, sft, pref, kto or prompt (required)")
                       ("input", po::value<std::vector<std::string>>()->multitoken(), "input files or folders (*.jsonl, *.json, *.txt, .gz) (required)")
                       ("tokenizer", po::value<std::string>(), "tokenizer.json or a model folder (required)")
                       ("template", po::value<std::string>()->default_value("qwen"), "chat template for sft/pref/kto/prompt (see src/data/chat_template_table.cpp)")
                       ("output", po::value<std::string>(), "output corpus .h5 (required)")
                       ("max-length", non_negative<std::size_t>()->default_value(512), "sft: tokens per sample (MedicalGPT's model_max_length); pref/kto: prompt + response; 0 = no limit")
                       ("max-prompt-length", non_negative<std::size_t>()->default_value(0), "pref/kto/prompt: prompt tokens kept (the end); 0 = no limit")
                       ("block-size", at_least<std::size_t>(1)->default_value(1024), "pt: tokens per block")
                       ("pt.doc_sep", po::value<std::string>()->default_value("line"), "pt .txt documents: line (one per line) or blank (blank-line separated)")
                       ("pt.drop_tail", po::value<bool>()->default_value(false)->implicit_value(true), "pt: drop the last, shorter block")
                       ("train-on-inputs", po::value<bool>()->default_value(false)->implicit_value(true), "sft: loss on every token, not only the answers")
                       ("validation-split", po::value<std::string>()->default_value("0"), "held-out samples: a fraction (0.01) or a count (200)")
                       ("seed", non_negative<std::uint64_t>()->default_value(42), "seed of the validation split")
                       ("skip-bad-records", po::value<bool>()->default_value(false)->implicit_value(true), "skip bad records (reported) instead of stopping");
                 },
                 run_prepare});
}

}  // namespace medgpt::app
