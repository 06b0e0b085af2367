// `medgpt data inspect X.h5`: what a prepared corpus holds (kind, counts, token statistics, source
// files) and a few samples decoded with the trained tokens shown, so a user can check what the
// loss will see: [[...]] marks tokens with loss, the rest is context.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "data/corpus.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "util/error.hpp"
#include "util/h5.hpp"
#include "util/sha256.hpp"

namespace medgpt::app {

namespace {

void print_stats(const char* split, const data::TokenArrays& a) {
  if (a.size() == 0) return;
  std::vector<std::uint64_t> len(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) len[i] = a.offsets[i + 1] - a.offsets[i];
  std::sort(len.begin(), len.end());
  std::size_t trained = 0;
  for (auto m : a.loss_mask) trained += m;
  std::printf("  %-5s %zu samples, %zu tokens; length min %llu, median %llu, max %llu", split, a.size(), a.tokens.size(),
              static_cast<unsigned long long>(len.front()), static_cast<unsigned long long>(len[len.size() / 2]),
              static_cast<unsigned long long>(len.back()));
  if (!a.loss_mask.empty()) std::printf("; %.1f%% of tokens trained", 100.0 * static_cast<double>(trained) / static_cast<double>(a.tokens.size()));
  if (!a.blocks.empty()) std::printf("; %zu blocks", a.blocks.size() - 1);
  std::printf("\n");
}

void print_header(const std::string& path, data::Kind kind, const data::CorpusInfo& info) {
  std::printf("%s: %s corpus, template \"%s\", tokenizer sha256 %s\n", path.c_str(), data::to_string(kind),
              info.template_name.c_str(), info.tokenizer_sha256.c_str());
  std::printf("  counts %s\n", info.counts.dump().c_str());
  for (const auto& s : info.source_files)
    std::printf("  source %s (%s bytes, sha256 %s)\n", s.value("name", "").c_str(), s["bytes"].dump().c_str(), s.value("sha256", "").c_str());
}

// pref / kto / prompt: per-column statistics and each column of the first samples decoded.
int inspect_columns(const po::variables_map& vm, const std::string& path, data::Kind kind) {
  data::CorpusInfo info;
  const data::ColumnSplit train = data::read_columns(path, kind, "", &info);
  const data::ColumnSplit valid = data::read_columns(path, kind, "valid");
  print_header(path, kind, info);
  std::printf("  %zu train + %zu valid samples\n", train.size(), valid.size());
  for (const auto& [name, column] : train.columns)
    if (name != "label") print_stats(name.c_str(), column);
  const int n = vm["sample"].as<int>();
  if (n <= 0 || !vm.count("tokenizer")) return 0;
  const data::Tokenizer tok = data::Tokenizer::load(vm["tokenizer"].as<std::string>());
  for (int k = 0; k < n && static_cast<std::size_t>(k) < train.size(); ++k) {
    std::printf("--- sample %d\n", k);
    for (const auto& [name, c] : train.columns) {
      const std::size_t b = c.offsets[static_cast<std::size_t>(k)], e = c.offsets[static_cast<std::size_t>(k) + 1];
      std::string text;
      if (name == "label" || name == "answer") {
        for (std::size_t i = b; i < e; ++i) text += name == "label" ? (c.tokens[i] ? "true" : "false") : std::string(1, static_cast<char>(c.tokens[i]));
      } else {
        text = tok.decode(std::vector<data::TokenId>(c.tokens.begin() + static_cast<std::ptrdiff_t>(b), c.tokens.begin() + static_cast<std::ptrdiff_t>(e)));
      }
      std::printf("[%s] %s\n", name.c_str(), text.c_str());
    }
  }
  return 0;
}

int run_inspect(const po::variables_map& vm) {
  const std::string path = required(vm, "input");
  const util::H5File f = util::H5File::open(path);
  const data::Kind kind = data::parse_kind(f.attr_string("", "kind"));
  data::CorpusInfo info;
  if (kind != data::Kind::Pt && kind != data::Kind::Sft) return inspect_columns(vm, path, kind);
  const data::TokenArrays train = data::read_corpus(path, kind, "", &info);
  const data::TokenArrays valid = data::read_corpus(path, kind, "valid");
  print_header(path, kind, info);
  print_stats("train", train);
  print_stats("valid", valid);

  const int n = vm["sample"].as<int>();
  if (n <= 0) return 0;
  if (!vm.count("tokenizer")) {
    std::printf("(pass --tokenizer to see %d decoded samples)\n", n);
    return 0;
  }
  const data::Tokenizer tok = data::Tokenizer::load(vm["tokenizer"].as<std::string>());
  if (util::sha256_file(tok.source()) != info.tokenizer_sha256)
    std::printf("note: %s is not the tokenizer this corpus was prepared with\n", tok.source().c_str());
  for (int k = 0; k < n && static_cast<std::size_t>(k) < train.size(); ++k) {
    const std::size_t b = train.offsets[static_cast<std::size_t>(k)], e = train.offsets[static_cast<std::size_t>(k) + 1];
    std::string out;
    bool open = false;
    std::vector<data::TokenId> run;
    auto flush = [&] {
      out += tok.decode(run);
      run.clear();
    };
    for (std::size_t i = b; i < e; ++i) {
      const bool trained = train.loss_mask.empty() || train.loss_mask[i];
      if (trained != open && !train.loss_mask.empty()) {
        flush();
        out += trained ? "[[" : "]]";
        open = trained;
      }
      run.push_back(static_cast<data::TokenId>(train.tokens[i]));
    }
    flush();
    if (open) out += "]]";
    std::printf("--- sample %d (%zu tokens)\n%s\n", k, e - b, out.c_str());
  }
  return 0;
}

}  // namespace

void register_data_commands(std::vector<Command>& out) {
  out.push_back({"data inspect", "what a prepared corpus holds, with samples decoded and the trained tokens marked [[...]]",
                 [](po::options_description& d) {
                   d.add_options()
                       ("input", po::value<std::string>(), "corpus .h5 from medgpt prepare (required)")
                       ("tokenizer", po::value<std::string>(), "tokenizer to decode samples with (the one used by prepare)")
                       ("sample", non_negative<int>()->default_value(2), "samples to decode");
                 },
                 run_inspect});
}

}  // namespace medgpt::app
