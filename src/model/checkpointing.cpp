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

struct CheckpointedBlock : public torch::autograd::Function<CheckpointedBlock> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                            const at::Tensor& mask, at::TensorList params, std::int64_t model, std::int64_t index) {
    ctx->saved_data["model"] = model;
    ctx->saved_data["index"] = index;
    ctx->saved_data["n_params"] = static_cast<std::int64_t>(params.size());
    ctx->save_for_backward({x, cos, sin, mask});
    // The recomputation must draw the same dropout masks (LoRA dropout) as this pass: keep the
    // generator state (torch.utils.checkpoint's preserve_rng_state).
    ctx->saved_data["rng"] = generator_state();
    at::NoGradGuard no_grad;
    return reinterpret_cast<const Transformer*>(static_cast<std::intptr_t>(model))->block(static_cast<std::size_t>(index), x, cos, sin, mask);
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
      y = m->block(index, x, saved[1], saved[2], saved[3]);
    }
    set_generator_state(now);
    variable_list grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                                /*allow_unused=*/true);
    variable_list out{grads[0], at::Tensor(), at::Tensor(), at::Tensor()};
    for (std::size_t i = 1; i < grads.size(); ++i) out.push_back(grads[i]);
    out.push_back(at::Tensor());
    out.push_back(at::Tensor());
    return out;
  }
};

}  // namespace

at::Tensor checkpointed_block(const Transformer& m, std::size_t i, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                              const at::Tensor& mask) {
  std::vector<at::Tensor> params;
  for (auto& [name, p] : m.block_parameters(i)) params.push_back(p);
  return CheckpointedBlock::apply(x, cos, sin, mask, at::TensorList(params), static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(&m)),
                                  static_cast<std::int64_t>(i));
}

}  // namespace medgpt::model
