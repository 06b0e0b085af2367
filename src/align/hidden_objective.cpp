#include "align/hidden_objective.hpp"

#include "align/lm.hpp"
#include "align/sequence_logps.hpp"
#include "model/lora.hpp"

namespace medgpt::align {

HiddenStateObjective::HiddenStateObjective(model::Transformer& model, bool sparse_embedding_grad)
    : model_(model), sparse_embedding_grad_(sparse_embedding_grad) {
  model::set_lora_training(model_, false);  // disable_dropout
}

model::ForwardInputs HiddenStateObjective::inputs(const data::Batch& trimmed) const {
  return sparse_embedding_grad_ ? logps_inputs(trimmed) : padded_inputs(trimmed);
}

at::Tensor HiddenStateObjective::loss(const data::Batch& b, double normalizer, bool) {
  const data::Batch t = trim_padding(b);
  return loss_from_hidden(t, model_.hidden(batch_tensor(t.ids, t), inputs(t)), normalizer);
}

at::Tensor HiddenStateObjective::stage_forward(const data::Batch& b, const at::Tensor& input, double normalizer, bool) {
  const data::Batch t = trim_padding(b);
  const at::Tensor h = model_.stage_forward(input.defined() ? input : batch_tensor(t.ids, t), inputs(t));
  return model_.stage().head ? loss_from_hidden(t, h, normalizer) : h;
}

at::Tensor HiddenStateObjective::activation_like(const data::Batch& b) const {
  const data::Batch t = trim_padding(b);
  return at::empty({static_cast<std::int64_t>(t.rows), static_cast<std::int64_t>(t.seq_len), model_.config().hidden_size},
                   at::TensorOptions().dtype(model_.dtype()));
}

}  // namespace medgpt::align
