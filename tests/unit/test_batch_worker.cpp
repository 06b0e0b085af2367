// infer::BatchWorker, the model thread of `medgpt serve`: requests submitted from many threads at
// once are batched (up to max_batch, same options only) and each gets exactly the ids it gets from
// generate() alone; a token callback that returns false ends only its own row. Also the TSan target
// of tools/test.sh --sanitize (handler threads, the worker, promises and callbacks).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "infer/batch_worker.hpp"
#include "infer/generator.hpp"
#include "model/transformer.hpp"
#include "util/json.hpp"

using namespace medgpt;

namespace {

struct Fixture {
  model::Transformer m;
  std::vector<std::vector<std::int64_t>> prompts;
};

Fixture load() {
  const std::string dir = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/tiny_qwen3";
  const auto ids = util::read_json_file(dir + "/ref.json").at("input_ids").get<std::vector<std::int64_t>>();
  Fixture s{model::Transformer::from_pretrained(dir + "/model", at::kFloat), {}};
  for (std::size_t n = 3; n <= ids.size() && s.prompts.size() < 8; n += 1 + ids.size() / 8)  // lengths differ: left padding
    s.prompts.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(ids.size() - n), ids.end());
  return s;
}

}  // namespace

TEST(BatchWorker, ConcurrentRequestsGetTheirSingleAnswers) {
  Fixture s = load();
  ASSERT_GE(s.prompts.size(), 5u);
  infer::GenerationOptions greedy;
  greedy.max_new_tokens = 6;
  infer::GenerationOptions other = greedy;  // other options: never in a batch with the greedy ones
  other.sampling.repetition_penalty = 1.3;
  std::vector<std::vector<std::int64_t>> alone;
  for (std::size_t i = 0; i < s.prompts.size(); ++i) alone.push_back(infer::generate(s.m, {s.prompts[i]}, i % 3 == 2 ? other : greedy)[0]);

  infer::BatchWorker worker(s.m, /*max_batch=*/3);
  for (int round = 0; round < 3; ++round) {
    std::vector<infer::Completion> got(s.prompts.size());
    std::vector<std::int64_t> streamed_count(s.prompts.size(), 0);
    std::atomic<int> ready{0};
    std::vector<std::thread> clients;
    for (std::size_t i = 0; i < s.prompts.size(); ++i)
      clients.emplace_back([&, i] {
        ++ready;
        while (ready < static_cast<int>(s.prompts.size())) std::this_thread::yield();  // submit together
        auto f = worker.submit(s.prompts[i], i % 3 == 2 ? other : greedy, [&, i](std::size_t, std::int64_t) {
          ++streamed_count[i];
          return true;
        });
        got[i] = f.get();
      });
    for (auto& t : clients) t.join();
    for (std::size_t i = 0; i < s.prompts.size(); ++i) {
      EXPECT_EQ(got[i].ids, alone[i]) << "round " << round << ", request " << i;
      EXPECT_EQ(streamed_count[i], static_cast<std::int64_t>(alone[i].size()));
    }
  }
}

TEST(BatchWorker, ACallbackThatSaysStopEndsOnlyItsRow) {
  Fixture s = load();
  infer::GenerationOptions o;
  o.max_new_tokens = 6;
  infer::BatchWorker worker(s.m, 8);
  auto cut = worker.submit(s.prompts[0], o, [n = 0](std::size_t, std::int64_t) mutable { return ++n < 2; });
  auto full = worker.submit(s.prompts[1], o);
  const infer::Completion c = cut.get(), f = full.get();
  EXPECT_EQ(c.ids.size(), 2u);
  EXPECT_TRUE(c.stopped);
  EXPECT_EQ(f.ids, infer::generate(s.m, {s.prompts[1]}, o)[0]);
  EXPECT_FALSE(f.stopped);
}
