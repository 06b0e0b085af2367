// `medgpt tokenizer bench`: encode throughput of the tokenizer itself (texts held in memory, no
// JSON or file I/O in the timed loop). Under mpirun each rank encodes its share of the texts; the
// figure is all tokens over the slowest rank's time.
#include <chrono>
#include <cstdio>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "data/text_files.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "parallel/grid.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

int run_bench(const po::variables_map& vm) {
  const data::Tokenizer tok = data::Tokenizer::load(required(vm, "tokenizer"));
  parallel::Grid grid(1, 1);
  parallel::Comm& world = grid.world();
  std::vector<std::string> texts;
  for (const auto& f : data::expand_text_inputs({required(vm, "input")}))
    data::for_each_text(f, [&](std::string_view t, const std::string&) { texts.emplace_back(t); });
  const std::size_t n = texts.size(), r = static_cast<std::size_t>(world.rank()), P = static_cast<std::size_t>(world.size());
  const std::size_t begin = n * r / P, end = n * (r + 1) / P;

  const int repeats = vm["repeats"].as<int>();
  double best = 1e30;
  std::int64_t tokens = 0, bytes = 0;
  std::vector<data::TokenId> ids;
  for (int rep = 0; rep < repeats; ++rep) {
    world.barrier();
    tokens = bytes = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = begin; i < end; ++i) {
      ids.clear();
      tok.encode(texts[i], false, ids);
      tokens += static_cast<std::int64_t>(ids.size());
      bytes += static_cast<std::int64_t>(texts[i].size());
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    at::Tensor t = at::full({1}, secs, at::kDouble);
    world.allreduce(t, parallel::ReduceOp::kMax);
    best = std::min(best, t.item<double>());
  }
  at::Tensor sums = at::tensor({tokens, bytes}, at::kLong);
  world.allreduce(sums, parallel::ReduceOp::kSum);
  const double all_tokens = static_cast<double>(sums[0].item<std::int64_t>()), all_bytes = static_cast<double>(sums[1].item<std::int64_t>());
  char buf[256];
  std::snprintf(buf, sizeof buf, "medgpt tokenizer bench: %zu texts, %.1f MB, %.0f tokens, %d rank(s): %.3f s, %.0f tokens/s, %.2f MB/s",
                n, all_bytes / 1e6, all_tokens, world.size(), best, all_tokens / best, all_bytes / 1e6 / best);
  if (world.rank() == 0) std::printf("%s\n", buf);
  return 0;
}

}  // namespace

void register_tokenizer_bench(std::vector<Command>& out) {
  out.push_back({"tokenizer bench", "encode throughput (tokens/s, MB/s) of a tokenizer on a corpus held in memory",
                 [](po::options_description& d) {
                   d.add_options()
                       ("tokenizer", po::value<std::string>(), "tokenizer.json, or a model folder holding one (required)")
                       ("input", po::value<std::string>(), "corpus: *.txt (a document per line) or *.jsonl (\"text\") (required)")
                       ("repeats", at_least(1)->default_value(3), "timed passes; the best is reported");
                 },
                 run_bench});
}

}  // namespace medgpt::app
