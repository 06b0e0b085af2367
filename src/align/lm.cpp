#include "align/lm.hpp"

#include <algorithm>

#include "model/lora.hpp"

namespace medgpt::align {

at::Tensor batch_tensor(const std::vector<std::int64_t>& v, const data::Batch& b) {
  return at::tensor(at::ArrayRef<std::int64_t>(v), at::kLong).view({static_cast<std::int64_t>(b.rows), static_cast<std::int64_t>(b.seq_len)});
}

model::ForwardInputs LmObjective::inputs(const data::Batch& b, bool training) const {
  model::ForwardInputs in;
  // Padding and packed samples need the segment mask and restarting positions; full pt blocks
  // are plain causal rows.
  const bool full_rows = std::all_of(b.attention_mask.begin(), b.attention_mask.end(), [](std::uint8_t m) { return m != 0; });
  if (packed_ || !full_rows) {
    in.positions = batch_tensor(b.positions, b);
    in.segment_ids = batch_tensor(b.segment_ids, b);
  }
  if (training) in.neftune_alpha = neftune_alpha_;
  return in;
}

at::Tensor LmObjective::loss(const data::Batch& b, double normalizer, bool training) {
  return model_.loss(batch_tensor(b.ids, b), batch_tensor(b.labels, b), inputs(b, training), normalizer);
}

at::Tensor LmObjective::stage_forward(const data::Batch& b, const at::Tensor& input, double normalizer, bool training) {
  const at::Tensor h = model_.stage_forward(input.defined() ? input : batch_tensor(b.ids, b), inputs(b, training));
  return model_.stage().head ? model_.loss_from_hidden(h, batch_tensor(b.labels, b), normalizer) : h;
}

at::Tensor LmObjective::activation_like(const data::Batch& b) const {
  return at::empty({static_cast<std::int64_t>(b.rows), static_cast<std::int64_t>(b.seq_len), model_.config().hidden_size},
                   at::TensorOptions().dtype(model_.dtype()));
}

void LmObjective::set_training(bool on) { model::set_lora_training(model_, on); }

}  // namespace medgpt::align
