// `medgpt data synth` and `medgpt data bench-loader`: the loader's benchmark for corpora larger
// than memory (issue: a 2 GB corpus). synth writes a pt corpus of seeded random tokens (the corpus
// layout of medgpt prepare); bench-loader serves batches from a corpus through data::Loader, as
// training does, and prints batches/s, tokens/s, the corpus bytes it went through per second and
// the process's peak resident memory, which stays far below the corpus size because the token
// column is memory-mapped.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "data/corpus.hpp"
#include "data/loader.hpp"
#include "data/pt_packing.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

// Peak resident set size of this process in MB (VmHWM), -1 when unknown.
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

int run_synth(const po::variables_map& vm) {
  const std::string out = required(vm, "output");
  const double gb = vm["gb"].as<double>();
  const auto vocab = vm["vocab"].as<std::uint32_t>();
  const auto block = vm["block-size"].as<std::size_t>();
  if (!(gb > 0) || vocab < 2 || block == 0) util::fail("data synth", "--gb, --vocab and --block-size must be positive", "e.g. --gb 2 --vocab 8000");
  const auto n = static_cast<std::size_t>(gb * 1e9 / sizeof(std::uint32_t));
  data::TokenArrays docs;
  {
    std::vector<std::uint32_t> tokens(n);
    std::mt19937_64 rng(vm["seed"].as<std::uint64_t>());
    for (auto& t : tokens) t = static_cast<std::uint32_t>(rng() % vocab);
    docs.tokens = std::move(tokens);
  }
  // Documents of 4,096 tokens, cut into blocks as prepare does.
  docs.offsets.clear();
  for (std::size_t at = 0; at < n; at += 4096) docs.offsets.push_back(at);
  docs.offsets.push_back(n);
  data::cut_blocks(docs, block, false);
  data::CorpusInfo info;
  info.kind = data::Kind::Pt;
  info.template_name = "";
  info.counts = {{"samples_train", docs.blocks.size() - 1}, {"block_size", block}, {"tokens_train", n}, {"synthetic", true}};
  data::write_corpus(out, info, docs, {});
  util::log("wrote " + out + ": " + std::to_string(n) + " random tokens (" + std::to_string(gb) + " GB), " + std::to_string(docs.blocks.size() - 1) +
            " blocks of " + std::to_string(block));
  return 0;
}

int run_bench_loader(const po::variables_map& vm) {
  const std::string path = required(vm, "corpus");
  const auto start = std::chrono::steady_clock::now();
  data::CorpusInfo info;
  const data::TokenArrays corpus = data::read_corpus(path, data::Kind::Pt, "", &info);
  const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  data::LoaderOptions o;
  o.rows = vm["rows"].as<std::size_t>();
  o.seq_len = info.counts.value("block_size", std::size_t{1024});
  data::Loader loader(corpus, data::Kind::Pt, o);
  const auto batches = vm["batches"].as<std::size_t>();
  std::uint64_t checksum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < batches; ++i) {
    const data::Batch b = loader.next();
    checksum += static_cast<std::uint64_t>(b.ids[i % b.ids.size()]);  // keeps the work observable
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens = static_cast<double>(batches * o.rows * o.seq_len);
  const double corpus_gb = static_cast<double>(corpus.tokens.size()) * 4 / 1e9;
  std::printf("corpus %s: %.2f GB of tokens (%s), opened in %.3f s\n", path.c_str(), corpus_gb, corpus.tokens.mapped() ? "memory-mapped" : "read in", open_s);
  std::printf("loader: %zu batches of %zu x %zu in %.2f s: %.1f batches/s, %.3g tokens/s, %.1f MB/s of corpus; peak RSS %.0f MB (checksum %llu)\n",
              batches, o.rows, o.seq_len, secs, static_cast<double>(batches) / secs, tokens / secs, tokens * 4 / secs / 1e6, peak_rss_mb(),
              static_cast<unsigned long long>(checksum));
  return 0;
}

}  // namespace

void register_data_bench_commands(std::vector<Command>& out) {
  out.push_back({"data synth", "a pt corpus of seeded random tokens (loader benchmarks: corpora larger than memory)",
                 [](po::options_description& d) {
                   d.add_options()
                       ("output", po::value<std::string>(), "corpus .h5 to write (required)")
                       ("gb", positive()->default_value(2.0), "size of the token column in GB")
                       ("vocab", po::value<std::uint32_t>()->default_value(8000), "token ids drawn from [0, vocab)")
                       ("block-size", at_least<std::size_t>(1)->default_value(1024), "tokens per training block")
                       ("seed", non_negative<std::uint64_t>()->default_value(1), "random seed");
                 },
                 run_synth});
  out.push_back({"data bench-loader", "batches/s, tokens/s and peak memory of the training loader on a pt corpus",
                 [](po::options_description& d) {
                   d.add_options()
                       ("corpus", po::value<std::string>(), "pt corpus .h5 (required)")
                       ("rows", at_least<std::size_t>(1)->default_value(8), "rows per batch")
                       ("batches", at_least<std::size_t>(1)->default_value(20000), "batches to serve");
                 },
                 run_bench_loader});
}

}  // namespace medgpt::app
