// What a generation asks for: sampling (transformers' logits processors) and when rows end.
// LibTorch-free, so request parsers (serve, their fuzz target) can fill it without the model.
#pragma once

#include <cstdint>
#include <vector>

namespace medgpt::infer {

struct SamplingOptions {
  bool do_sample = false;
  double temperature = 1.0;
  std::int64_t top_k = 0;  // 0: off
  double top_p = 1.0;      // 1: off
  double min_p = 0.0;      // 0: off
  double repetition_penalty = 1.0;
};

struct GenerationOptions {
  SamplingOptions sampling;
  std::int64_t max_new_tokens = 256;
  std::vector<std::int64_t> eos_ids;  // any of them ends a row (kept in its output)
  std::int64_t pad_id = 0;
  std::uint64_t seed = 42;
};

}  // namespace medgpt::infer
