// `medgpt tokenizer encode|decode|train|extend`: Hugging Face-exact byte-level BPE from the
// command line. encode/decode are MPI-parallel over lines (same output for any rank count).
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "app/parallel_lines.hpp"
#include "data/readers/record_line.hpp"
#include "data/text_files.hpp"
#include "data/tokenizer/bpe_trainer.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "data/tokenizer/vocab_extension.hpp"
#include "parallel/grid.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/progress.hpp"

namespace medgpt::app {

namespace {

using data::TokenId;
using data::Tokenizer;

std::string rate(double units, double seconds, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s/s", seconds > 0 ? units / seconds : 0.0, unit);
  return buf;
}

int run_encode(const po::variables_map& vm) {
  const Tokenizer tok = Tokenizer::load(required(vm, "tokenizer"));
  const bool special = flag(vm, "add-special-tokens");
  parallel::Grid grid(1, 1);
  std::int64_t tokens = 0;
  const LineStats st = map_lines(grid.world(), required(vm, "input"), required(vm, "output"),
                                 [&](std::string_view line, const std::string& where, std::string& out) {
    const nlohmann::json j = data::parse_record_line(line, where);
    if (!j.is_object() || !j.contains("text")) util::fail(where + ": text", "missing", "each line must be {\"text\": \"...\"}");
    if (!j["text"].is_string()) util::fail(where + ": text", "not a string", "each line must be {\"text\": \"...\"}");
    const auto ids = tok.encode(j["text"].get_ref<const std::string&>(), special);
    tokens += static_cast<std::int64_t>(ids.size());
    out += nlohmann::json{{"ids", ids}}.dump();
    out += '\n';
  });
  util::log("encoded " + std::to_string(st.lines) + " lines (" + std::to_string(tokens) + " tokens on rank 0), " +
            rate(static_cast<double>(st.input_bytes) / 1e6, st.seconds, "MB") + " -> " + required(vm, "output"));
  return 0;
}

int run_decode(const po::variables_map& vm) {
  const Tokenizer tok = Tokenizer::load(required(vm, "tokenizer"));
  const bool skip = flag(vm, "skip-special-tokens");
  const std::string clean = vm["clean-up-tokenization-spaces"].as<std::string>();
  std::optional<bool> clean_up;  // auto: tokenizer_config.json decides, as in transformers
  if (clean == "true") clean_up = true;
  else if (clean == "false") clean_up = false;
  else if (clean != "auto") util::fail("--clean-up-tokenization-spaces", "\"" + clean + "\" is not auto, true or false", "pick one");
  parallel::Grid grid(1, 1);
  const LineStats st = map_lines(grid.world(), required(vm, "input"), required(vm, "output"),
                                 [&](std::string_view line, const std::string& where, std::string& out) {
    const nlohmann::json j = data::parse_record_line(line, where);
    if (!j.is_object() || !j.contains("ids")) util::fail(where + ": ids", "missing", "each line must be {\"ids\": [...]}");
    if (!j["ids"].is_array()) util::fail(where + ": ids", "not an array", "each line must be {\"ids\": [...]}");
    std::vector<TokenId> ids;
    for (const auto& v : j["ids"]) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > tok.max_id())
        util::fail(where + ": ids", "holds " + v.dump() + ", not a token id of this tokenizer (0.." + std::to_string(tok.max_id()) + ")",
                   "decode ids made with the same tokenizer");
      ids.push_back(v.get<TokenId>());
    }
    out += nlohmann::json{{"text", tok.decode(ids, skip, clean_up)}}.dump();
    out += '\n';
  });
  util::log("decoded " + std::to_string(st.lines) + " lines -> " + required(vm, "output"));
  return 0;
}

data::BpeTrainerOptions trainer_options(const po::variables_map& vm) {
  data::BpeTrainerOptions o;
  o.vocab_size = vm["vocab-size"].as<std::size_t>();
  o.min_frequency = vm["min-frequency"].as<std::int64_t>();
  o.special_tokens = vm["special-tokens"].as<std::vector<std::string>>();
  const std::string pattern = vm["pattern"].as<std::string>();
  if (pattern == "qwen") o.pattern = data::kQwenSplitPattern;
  else if (pattern == "llama3") o.pattern = std::string(data::kQwenSplitPattern).replace(std::string(data::kQwenSplitPattern).find("\\p{N}|"), 6, "\\p{N}{1,3}|");
  else util::fail("--pattern", "\"" + pattern + "\" is not known", "use qwen or llama3");
  o.nfc = vm["normalizer"].as<std::string>() == "nfc";
  if (!o.nfc && vm["normalizer"].as<std::string>() != "none") util::fail("--normalizer", "must be nfc or none", "pick one");
  return o;
}

int run_train(const po::variables_map& vm) {
  const auto files = data::expand_text_inputs(vm["input"].as<std::vector<std::string>>());
  const std::string out_dir = required(vm, "output");
  const data::BpeTrainerOptions opt = trainer_options(vm);
  parallel::Grid grid(1, 1);
  if (grid.rank() != 0) return 0;  // counting and merging run on one rank

  data::WordCounter counter(opt);
  util::Progress prog("tokenizer train: counting", static_cast<double>(data::total_bytes(files)));
  double done = 0;
  std::int64_t docs = 0;
  for (const auto& f : files) {
    data::for_each_text(f, [&](std::string_view text, const std::string&) {
      counter.add(text);
      done += static_cast<double>(text.size()) + 1;
      if ((++docs & 255) == 0) prog.update(done, std::to_string(docs) + " documents");
    });
  }
  prog.finish();
  util::log("counted " + std::to_string(docs) + " documents, " + std::to_string(counter.counts().size()) + " distinct words");
  util::Progress mprog("tokenizer train: merging", static_cast<double>(opt.vocab_size), "merges");
  const Tokenizer tok = data::train_bpe(counter.counts(), opt, [&](std::size_t n, std::size_t target) {
    mprog.update(static_cast<double>(n), std::to_string(n) + "/" + std::to_string(target) + " merges");
  });
  mprog.finish();
  tok.save(out_dir);
  util::log("trained a byte-level BPE tokenizer: " + std::to_string(tok.size()) + " tokens (" +
            std::to_string(tok.model().merges().size()) + " merges) -> " + out_dir + "/tokenizer.json");
  return 0;
}

std::int64_t count_tokens(const Tokenizer& tok, const std::vector<std::string>& files) {
  std::int64_t n = 0;
  std::vector<TokenId> ids;
  for (const auto& f : files)
    data::for_each_text(f, [&](std::string_view text, const std::string&) {
      ids.clear();
      tok.encode(text, false, ids);
      n += static_cast<std::int64_t>(ids.size());
    });
  return n;
}

int run_extend(const po::variables_map& vm) {
  const Tokenizer base = Tokenizer::load(required(vm, "base"));
  const std::string add = required(vm, "add");
  const std::string out_dir = required(vm, "output");
  parallel::Grid grid(1, 1);
  if (grid.rank() != 0) return 0;

  data::Extension ext = [&] {
    if (util::is_directory(add) || (add.size() >= 5 && add.compare(add.size() - 5, 5, ".json") == 0))
      return data::extend_with_tokenizer(base, Tokenizer::load(add), vm["max-new-tokens"].as<std::size_t>());
    // A word list: one term per line (an optional tab-separated count after it is ignored).
    std::vector<std::string> words;
    data::for_each_text(add, [&](std::string_view line, const std::string&) {
      words.emplace_back(line.substr(0, line.find('\t')));
    });
    return data::extend_with_words(base, words);
  }();
  ext.tokenizer.save(out_dir);
  util::log("added " + std::to_string(ext.added_tokens) + " tokens and " + std::to_string(ext.added_merges) +
            " merges: vocabulary " + std::to_string(base.size()) + " -> " + std::to_string(ext.tokenizer.size()) +
            " (base ids unchanged) -> " + out_dir + "/tokenizer.json");
  if (vm.count("corpus")) {
    const auto files = data::expand_text_inputs(vm["corpus"].as<std::vector<std::string>>());
    const std::int64_t before = count_tokens(base, files), after = count_tokens(ext.tokenizer, files);
    char buf[160];
    std::snprintf(buf, sizeof buf, "corpus: %lld tokens with the base tokenizer, %lld extended (%.1f%% shorter)",
                  static_cast<long long>(before), static_cast<long long>(after),
                  before > 0 ? 100.0 * static_cast<double>(before - after) / static_cast<double>(before) : 0.0);
    util::log(buf);
  }
  return 0;
}

}  // namespace

void register_tokenizer_commands(std::vector<Command>& out) {
  out.push_back({"tokenizer encode", "text -> token ids: JSONL {\"text\"} lines -> {\"ids\"} lines (MPI-parallel over lines)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("tokenizer", po::value<std::string>(), "tokenizer.json, or a model folder holding one (required)")
                       ("input", po::value<std::string>(), "input JSONL, one {\"text\": ...} per line (required)")
                       ("output", po::value<std::string>(), "output JSONL, one {\"ids\": [...]} per line, same order (required)")
                       ("add-special-tokens", po::value<bool>()->default_value(false)->implicit_value(true),
                        "add the tokenizer's BOS/EOS (e.g. Llama-3's <|begin_of_text|>)");
                 },
                 run_encode});
  out.push_back({"tokenizer decode", "token ids -> text: JSONL {\"ids\"} lines -> {\"text\"} lines (MPI-parallel over lines)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("tokenizer", po::value<std::string>(), "tokenizer.json, or a model folder holding one (required)")
                       ("input", po::value<std::string>(), "input JSONL, one {\"ids\": [...]} per line (required)")
                       ("output", po::value<std::string>(), "output JSONL, one {\"text\": ...} per line, same order (required)")
                       ("skip-special-tokens", po::value<bool>()->default_value(false)->implicit_value(true),
                        "drop special tokens (e.g. <|im_end|>) from the text")
                       ("clean-up-tokenization-spaces", po::value<std::string>()->default_value("auto"),
                        "transformers' \" ,\" -> \",\" clean-up: auto (as tokenizer_config.json says), true or false");
                 },
                 run_decode});
  out.push_back({"tokenizer train", "train a byte-level BPE tokenizer (Qwen pre-tokenizer) on a corpus",
                 [](po::options_description& d) {
                   d.add_options()
                       ("input", po::value<std::vector<std::string>>()->multitoken(),
                        "corpus files or folders (*.txt: a document per line; *.jsonl: \"text\" field) (required)")
                       ("output", po::value<std::string>(), "output folder for tokenizer.json + tokenizer_config.json (required)")
                       ("vocab-size", at_least<std::size_t>(1)->default_value(32000), "tokens in all: bytes + merges + special tokens")
                       ("min-frequency", at_least<std::int64_t>(1)->default_value(2), "stop when the best pair is rarer than this")
                       ("special-tokens", po::value<std::vector<std::string>>()->multitoken()->default_value(
                            {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}, "<|endoftext|> <|im_start|> <|im_end|>"),
                        "special tokens, appended after the vocabulary")
                       ("pattern", po::value<std::string>()->default_value("qwen"), "pre-tokenizer regex: qwen or llama3")
                       ("normalizer", po::value<std::string>()->default_value("nfc"), "nfc (as Qwen) or none (as Llama-3)");
                 },
                 [](const po::variables_map& vm) {
                   if (!vm.count("input")) util::fail("--input", "missing", "name the corpus files or folders");
                   return run_train(vm);
                 }});
  out.push_back({"tokenizer extend", "append domain tokens to a base tokenizer (base ids unchanged)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("base", po::value<std::string>(), "base tokenizer (tokenizer.json or model folder) (required)")
                       ("add", po::value<std::string>(),
                        "a domain tokenizer (folder or tokenizer.json from `tokenizer train`) or a word list (one term per line) (required)")
                       ("output", po::value<std::string>(), "output folder for the extended tokenizer (required)")
                       ("max-new-tokens", non_negative<std::size_t>()->default_value(0), "cap on tokens taken from a domain tokenizer (0: all)")
                       ("corpus", po::value<std::vector<std::string>>()->multitoken(),
                        "text files to report the token savings on (e.g. inputs/data/medical_corpus.txt)");
                 },
                 run_extend});
}

}  // namespace medgpt::app
