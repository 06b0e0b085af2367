#include "infer/batch_worker.hpp"

#include <algorithm>

namespace medgpt::infer {

namespace {

bool same_options(const GenerationOptions& a, const GenerationOptions& b) {
  const SamplingOptions &x = a.sampling, &y = b.sampling;
  return x.do_sample == y.do_sample && x.temperature == y.temperature && x.top_k == y.top_k && x.top_p == y.top_p &&
         x.min_p == y.min_p && x.repetition_penalty == y.repetition_penalty && a.max_new_tokens == b.max_new_tokens &&
         a.eos_ids == b.eos_ids && a.pad_id == b.pad_id && a.seed == b.seed;
}

}  // namespace

BatchWorker::BatchWorker(const model::Transformer& m, std::size_t max_batch)
    : m_(m), max_batch_(std::max<std::size_t>(1, max_batch)), thread_([this] { loop(); }) {}

BatchWorker::~BatchWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::future<Completion> BatchWorker::submit(std::vector<std::int64_t> prompt, GenerationOptions options, TokenFn on_token) {
  Job job{std::move(prompt), std::move(options), std::move(on_token), {}};
  std::future<Completion> f = job.done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return f;
}

void BatchWorker::loop() {
  while (true) {
    std::vector<Job> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_ && queue_.empty()) return;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
      for (auto it = queue_.begin(); it != queue_.end() && batch.size() < max_batch_;) {
        if (same_options(it->options, batch.front().options)) {
          batch.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::vector<std::vector<std::int64_t>> prompts;
    for (const auto& j : batch) prompts.push_back(j.prompt);
    std::vector<bool> cut(batch.size(), false);
    try {
      const auto out = generate(m_, prompts, batch.front().options, [&](std::size_t row, std::int64_t id) {
        const bool go_on = !batch[row].on_token || batch[row].on_token(0, id);
        if (!go_on) cut[row] = true;
        return go_on;
      });
      const auto& eos = batch.front().options.eos_ids;
      for (std::size_t r = 0; r < batch.size(); ++r) {
        const bool at_eos = !out[r].empty() && std::find(eos.begin(), eos.end(), out[r].back()) != eos.end();
        batch[r].done.set_value({out[r], cut[r] || at_eos});
      }
    } catch (...) {
      for (auto& j : batch) j.done.set_exception(std::current_exception());
    }
  }
}

}  // namespace medgpt::infer
