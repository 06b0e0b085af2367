// The one thread that owns the model in `medgpt serve`: HTTP handler threads submit requests and
// wait; the worker takes the oldest waiting request together with every other waiting request that
// has the same generation options (up to max_batch) and generates them as one left-padded batch,
// streaming each row's tokens to its own request.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "infer/generator.hpp"

namespace medgpt::infer {

struct Completion {
  std::vector<std::int64_t> ids;
  bool stopped = false;  // ended by an EOS id or by its token callback (a stop string), not by length
};

class BatchWorker {
 public:
  BatchWorker(const model::Transformer& m, std::size_t max_batch);
  ~BatchWorker();
  // `on_token` runs on the worker thread; returning false ends the request there.
  std::future<Completion> submit(std::vector<std::int64_t> prompt, GenerationOptions options, TokenFn on_token = {});

 private:
  struct Job {
    std::vector<std::int64_t> prompt;
    GenerationOptions options;
    TokenFn on_token;
    std::promise<Completion> done;
  };
  void loop();

  const model::Transformer& m_;
  std::size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace medgpt::infer
