#include "align/lm.hpp"

#include <algorithm>

#include "model/lora.hpp"

namespace medgpt::align {

at::Tensor batch_tensor(const std::vector<std::int64_t>& v, const data::Batch& b) {
  return at::tensor(at::ArrayRef<std::int64_t>(v), at::kLong).view({static_cast<std::int64_t>(b.rows), static_cast<std::int64_t>(b.seq_len)});
}

at::Tensor LmObjective::loss(const data::Batch& b, double normalizer, bool training) {
  model::ForwardInputs in;
  // Padding and packed samples need the segment mask and restarting positions; full pt blocks
  // are plain causal rows.
  const bool full_rows = std::all_of(b.attention_mask.begin(), b.attention_mask.end(), [](std::uint8_t m) { return m != 0; });
  if (packed_ || !full_rows) {
    in.positions = batch_tensor(b.positions, b);
    in.segment_ids = batch_tensor(b.segment_ids, b);
  }
  if (training) in.neftune_alpha = neftune_alpha_;
  return model_.loss(batch_tensor(b.ids, b), batch_tensor(b.labels, b), in, normalizer);
}

void LmObjective::set_training(bool on) { model::set_lora_training(model_, on); }

}  // namespace medgpt::align
