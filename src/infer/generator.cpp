#include "infer/generator.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "model/kv_cache.hpp"
#include "util/error.hpp"

namespace medgpt::infer {

std::vector<std::vector<std::int64_t>> generate(const model::Transformer& m, const std::vector<std::vector<std::int64_t>>& prompts,
                                                const GenerationOptions& o, const TokenFn& on_token) {
  at::NoGradGuard no_grad;
  const auto B = static_cast<std::int64_t>(prompts.size());
  std::vector<std::vector<std::int64_t>> out(prompts.size());
  if (B == 0) return out;
  std::int64_t L = 0;
  for (const auto& p : prompts) {
    if (p.empty()) util::fail("generate", "an empty prompt", "give every prompt at least one token");
    L = std::max<std::int64_t>(L, static_cast<std::int64_t>(p.size()));
  }
  // Left padding: [pad ... prompt], positions 0.. over the real tokens.
  at::Tensor ids = at::full({B, L}, o.pad_id, at::kLong), mask = at::zeros({B, L}, at::kLong);
  std::vector<std::vector<std::int64_t>> seen(prompts.size());
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<std::size_t>(b)];
    const auto n = static_cast<std::int64_t>(p.size());
    ids[b].narrow(0, L - n, n).copy_(at::tensor(at::ArrayRef<std::int64_t>(p), at::kLong));
    mask[b].narrow(0, L - n, n).fill_(1);
    seen[static_cast<std::size_t>(b)] = p;
  }
  at::Tensor positions = (mask.cumsum(-1) - 1).clamp_min(0);

  model::KvCache cache;
  model::ForwardInputs in;
  in.cache = &cache;
  in.attention_mask = mask;
  in.positions = positions;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::vector<bool> done(prompts.size(), false);
  std::int64_t live = B;
  at::Tensor logits = m.last_logits(ids, in);
  for (std::int64_t step = 0; step < o.max_new_tokens && live > 0; ++step) {
    const at::Tensor next = next_tokens(logits, seen, o.sampling, gen);
    const auto* nx = next.data_ptr<std::int64_t>();
    std::vector<std::int64_t> feed(static_cast<std::size_t>(B), o.pad_id);
    for (std::size_t b = 0; b < prompts.size(); ++b) {
      if (done[b]) continue;
      const std::int64_t id = nx[b];
      feed[b] = id;
      out[b].push_back(id);
      seen[b].push_back(id);
      const bool go_on = !on_token || on_token(b, id);
      if (!go_on || std::find(o.eos_ids.begin(), o.eos_ids.end(), id) != o.eos_ids.end()) {
        done[b] = true;
        --live;
      }
    }
    if (live == 0 || step + 1 == o.max_new_tokens) break;
    mask = at::cat({mask, at::ones({B, 1}, at::kLong)}, 1);
    positions = positions.narrow(1, positions.size(1) - 1, 1) + 1;
    in.attention_mask = mask;
    in.positions = positions;
    logits = m.last_logits(at::tensor(at::ArrayRef<std::int64_t>(feed), at::kLong).view({B, 1}), in);
  }
  return out;
}

}  // namespace medgpt::infer
