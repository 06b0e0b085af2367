#include "align/sequence_logps.hpp"

#include "align/lm.hpp"
#include "parallel/tensor_parallel.hpp"
#include "model/lm_loss.hpp"
#include "model/lora.hpp"

namespace medgpt::align {

model::ForwardInputs padded_inputs(const data::Batch& b) {
  model::ForwardInputs in;
  in.positions = batch_tensor(b.positions, b);
  in.segment_ids = batch_tensor(b.segment_ids, b);
  return in;
}

data::Batch trim_padding(const data::Batch& b) {
  std::size_t T = 1;
  for (std::size_t r = 0; r < b.rows; ++r)
    for (std::size_t t = b.seq_len; t > T; --t)
      if (b.attention_mask[r * b.seq_len + t - 1]) {
        T = t;
        break;
      }
  if (T == b.seq_len) return b;
  data::Batch out = b;
  out.seq_len = T;
  auto cut = [&](auto& v, const auto& from) {
    v.resize(b.rows * T);
    for (std::size_t r = 0; r < b.rows; ++r) std::copy_n(from.begin() + static_cast<std::ptrdiff_t>(r * b.seq_len), T, v.begin() + static_cast<std::ptrdiff_t>(r * T));
  };
  cut(out.ids, b.ids);
  cut(out.labels, b.labels);
  cut(out.positions, b.positions);
  cut(out.segment_ids, b.segment_ids);
  cut(out.attention_mask, b.attention_mask);
  return out;
}

model::ForwardInputs logps_inputs(const data::Batch& b) {
  model::ForwardInputs in = padded_inputs(b);
  in.sparse_embedding_grad = true;  // a tied head gets its gradient from lm_loss below
  return in;
}

RowLogps row_logps(const model::Transformer& m, const data::Batch& padded, bool all_tokens) {
  const data::Batch b = trim_padding(padded);
  return row_logps_from_hidden(m, m.hidden(batch_tensor(b.ids, b), logps_inputs(b)), b, all_tokens);
}

RowLogps row_logps_from_hidden(const model::Transformer& m, const at::Tensor& h, const data::Batch& b, bool all_tokens) {
  const at::Tensor ids = batch_tensor(b.ids, b);
  const at::Tensor labels = model::shift_labels(batch_tensor(b.labels, b));  // [R, T]: the token each position predicts
  at::Tensor all_labels;
  if (all_tokens) {  // every real next token: labels = ids where attention_mask is 1
    const at::Tensor real = at::tensor(at::ArrayRef<std::uint8_t>(b.attention_mask), at::kByte).view(ids.sizes()).to(at::kBool);
    all_labels = model::shift_labels(at::where(real, ids, at::full_like(ids, model::kIgnoreIndex)));
  }
  // Per row, the fused LM loss with normaliser 1 is minus the summed log-probs of its labels
  // (chunked over the vocabulary, vocab-parallel under tp).
  auto summed = [&](const at::Tensor& hr, const at::Tensor& y) {
    return -model::lm_loss(hr, m.lm_head(), y, 1.0, 1024, m.tp(), m.vocab_start());
  };
  std::vector<at::Tensor> sums, all_sums;
  for (std::int64_t r = 0; r < h.size(0); ++r) {
    const at::Tensor hr = m.tp() ? parallel::copy_to_tp(h[r], *m.tp()) : h[r];
    sums.push_back(summed(hr, labels[r]));
    if (all_tokens) all_sums.push_back(summed(hr, all_labels[r]));
  }
  RowLogps out{at::stack(sums), labels.ne(model::kIgnoreIndex).sum(-1).to(at::kFloat), {}, {}};
  if (all_tokens) out.all_sum = at::stack(all_sums), out.all_count = all_labels.ne(model::kIgnoreIndex).sum(-1).to(at::kFloat);
  return out;
}

RowLogps reference_row_logps(model::Transformer& policy, const model::Transformer* reference, const data::Batch& b) {
  at::NoGradGuard no_grad;
  if (reference) return row_logps(*reference, b);
  const model::AdaptersDisabled base_only(policy);
  return row_logps(policy, b);
}

PairLogps pair_logps(const RowLogps& r) {
  const std::int64_t n = r.sum.size(0) / 2;
  return {r.sum.narrow(0, 0, n), r.sum.narrow(0, n, n), r.count.narrow(0, 0, n), r.count.narrow(0, n, n)};
}

}  // namespace medgpt::align
