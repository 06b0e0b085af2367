#include "infer/sampler.hpp"

#include <limits>

namespace medgpt::infer {

void apply_repetition_penalty(at::Tensor& logits, const std::vector<std::vector<std::int64_t>>& seen, double penalty) {
  if (penalty == 1.0) return;
  for (std::size_t b = 0; b < seen.size(); ++b) {
    if (seen[b].empty()) continue;
    at::Tensor row = logits[static_cast<std::int64_t>(b)];
    const at::Tensor ids = at::tensor(at::ArrayRef<std::int64_t>(seen[b]), at::kLong);
    const at::Tensor s = row.index_select(0, ids);
    row.index_copy_(0, ids, at::where(s < 0, s * penalty, s / penalty));  // duplicates write the same value
  }
}

at::Tensor warp(at::Tensor logits, const SamplingOptions& o) {
  const double inf = std::numeric_limits<double>::infinity();
  if (o.temperature != 1.0 && o.temperature > 0) logits = logits / o.temperature;
  const std::int64_t V = logits.size(-1);
  if (o.top_k > 0 && o.top_k < V) {
    const at::Tensor kth = std::get<0>(at::topk(logits, o.top_k, -1)).narrow(-1, o.top_k - 1, 1);
    logits = logits.masked_fill(logits < kth, -inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, idx] = at::sort(logits, -1, /*descending=*/false);
    const at::Tensor cum = at::softmax(sorted, -1).cumsum(-1);
    at::Tensor remove = cum <= (1.0 - o.top_p);
    remove.narrow(-1, V - 1, 1).fill_(false);  // min_keep = 1: the largest stays
    logits = logits.masked_fill(at::zeros_like(remove).scatter(-1, idx, remove), -inf);
  }
  if (o.min_p > 0) {
    const at::Tensor p = at::softmax(logits, -1);
    const at::Tensor threshold = std::get<0>(p.max(-1, true)) * o.min_p;
    at::Tensor remove = p < threshold;
    logits = logits.masked_fill(remove, -inf);
  }
  return logits;
}

at::Tensor next_tokens(at::Tensor logits, const std::vector<std::vector<std::int64_t>>& seen, const SamplingOptions& o, at::Generator& gen) {
  logits = logits.to(at::kFloat).clone();
  apply_repetition_penalty(logits, seen, o.repetition_penalty);
  if (!o.do_sample || o.temperature <= 0) return logits.argmax(-1);
  const at::Tensor probs = at::softmax(warp(logits, o), -1);
  return at::multinomial(probs, 1, false, gen).squeeze(-1);
}

}  // namespace medgpt::infer
