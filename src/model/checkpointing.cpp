#include "model/checkpointing.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

namespace medgpt::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor generator_state() {
  at::Generator g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_generator_state(const at::Tensor& state) {
  at::Generator g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

// Optional tensors travel as empty ones: an autograd function's tensor inputs are defined.
at::Tensor or_empty(const at::Tensor& t) { return t.defined() ? t : at::empty({0}); }
at::Tensor or_undefined(const at::Tensor& t) { return t.numel() > 0 ? t : at::Tensor(); }

MaskSpec mask_of(const at::Tensor& additive, const at::Tensor& key_mask, const at::Tensor& segments, std::int64_t past) {
  return {or_undefined(additive), {past, or_undefined(key_mask), or_undefined(segments)}};
}

struct CheckpointedBlock : public torch::autograd::Function<CheckpointedBlock> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& additive,
                            const at::Tensor& key_mask, const at::Tensor& segments, at::TensorList params, std::int64_t model,
                            std::int64_t index, std::int64_t past) {
    ctx->saved_data["model"] = model;
    ctx->saved_data["index"] = index;
    ctx->saved_data["past"] = past;
    ctx->save_for_backward({x, cos, sin, additive, key_mask, segments});
    // The recomputation must draw the same dropout masks (LoRA dropout) as this pass: keep the
    // generator state (torch.utils.checkpoint's preserve_rng_state).
    ctx->saved_data["rng"] = generator_state();
    at::NoGradGuard no_grad;
    return reinterpret_cast<const Transformer*>(static_cast<std::intptr_t>(model))
        ->block(static_cast<std::size_t>(index), x, cos, sin, mask_of(additive, key_mask, segments, past));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto* m = reinterpret_cast<const Transformer*>(static_cast<std::intptr_t>(ctx->saved_data["model"].toInt()));
    const auto index = static_cast<std::size_t>(ctx->saved_data["index"].toInt());
    const auto saved = ctx->get_saved_variables();
    at::Tensor x = saved[0].detach().requires_grad_(true);
    variable_list inputs{x};
    for (auto& [name, p] : m->block_parameters(index)) inputs.push_back(p);
    at::Tensor y;
    const at::Tensor now = generator_state();
    set_generator_state(ctx->saved_data["rng"].toTensor());
    {
      at::AutoGradMode enable(true);
      y = m->block(index, x, saved[1], saved[2], mask_of(saved[3], saved[4], saved[5], ctx->saved_data["past"].toInt()));
    }
    set_generator_state(now);
    variable_list grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                                /*allow_unused=*/true);
    variable_list out{grads[0], at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    for (std::size_t i = 1; i < grads.size(); ++i) out.push_back(grads[i]);
    for (int i = 0; i < 3; ++i) out.push_back(at::Tensor());  // model, index, past
    return out;
  }
};

}  // namespace

at::Tensor checkpointed_block(const Transformer& m, std::size_t i, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                              const MaskSpec& mask) {
  std::vector<at::Tensor> params;
  for (auto& [name, p] : m.block_parameters(i)) params.push_back(p);
  return CheckpointedBlock::apply(x, cos, sin, or_empty(mask.additive), or_empty(mask.parts.key_mask), or_empty(mask.parts.segment_ids),
                                  at::TensorList(params), static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(&m)),
                                  static_cast<std::int64_t>(i), mask.parts.past);
}

}  // namespace medgpt::model
