#include "align/sequence_logps.hpp"

#include "align/lm.hpp"
#include "model/lm_loss.hpp"
#include "util/error.hpp"

namespace medgpt::align {

model::ForwardInputs padded_inputs(const data::Batch& b) {
  model::ForwardInputs in;
  in.positions = batch_tensor(b.positions, b);
  in.segment_ids = batch_tensor(b.segment_ids, b);
  return in;
}

RowLogps row_logps(const model::Transformer& m, const data::Batch& b) {
  if (m.tp()) util::fail("preference training", "tensor parallelism is not supported for sequence log-probs yet", "use --parallel.tp 1");
  const at::Tensor h = m.hidden(batch_tensor(b.ids, b), padded_inputs(b));
  const at::Tensor labels = model::shift_labels(batch_tensor(b.labels, b));  // [R, T]: the token each position predicts
  std::vector<at::Tensor> sums, counts;
  for (std::int64_t r = 0; r < h.size(0); ++r) {
    const at::Tensor y = labels[r];
    const at::Tensor keep = y.ne(model::kIgnoreIndex);
    const at::Tensor logp = at::log_softmax(at::linear(h[r], m.lm_head()).to(at::kFloat), -1);
    sums.push_back((logp.gather(-1, y.clamp_min(0).unsqueeze(-1)).squeeze(-1) * keep).sum());
    counts.push_back(keep.sum().to(at::kFloat));
  }
  return {at::stack(sums), at::stack(counts)};
}

}  // namespace medgpt::align
