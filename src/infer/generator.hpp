// Batched generation with a KV cache: prompts of different lengths left-padded (positions count
// real tokens only, padding masked out, as transformers' generate does), one prefill, then one
// decode step per token; each row stops on its own at an EOS id or max_new_tokens.
#pragma once

#include <functional>
#include <vector>

#include "infer/sampler.hpp"
#include "model/transformer.hpp"

namespace medgpt::infer {

// Token callback for streaming: (row, id); returning false ends that row there (a stop string).
using TokenFn = std::function<bool(std::size_t, std::int64_t)>;

// The new ids of every prompt (EOS included when reached).
std::vector<std::vector<std::int64_t>> generate(const model::Transformer& m, const std::vector<std::vector<std::int64_t>>& prompts,
                                                const GenerationOptions& o, const TokenFn& on_token = {});

}  // namespace medgpt::infer
