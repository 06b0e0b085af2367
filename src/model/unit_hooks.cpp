#include "model/unit_hooks.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>

namespace medgpt::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct UnitBoundary : public torch::autograd::Function<UnitBoundary> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, std::int64_t hooks, std::int64_t unit) {
    ctx->saved_data["hooks"] = hooks;
    ctx->saved_data["unit"] = unit;
    return x.view_as(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto* hooks = reinterpret_cast<UnitHooks*>(static_cast<std::intptr_t>(ctx->saved_data["hooks"].toInt()));
    const int unit = static_cast<int>(ctx->saved_data["unit"].toInt());
    hooks->after_backward(unit);
    hooks->before_backward(unit - 1);
    return {grad_out[0], at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor unit_boundary(const at::Tensor& x, UnitHooks* hooks, int unit) {
  if (!hooks || !x.requires_grad() || !at::GradMode::is_enabled()) return x;
  return UnitBoundary::apply(x, static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(hooks)), static_cast<std::int64_t>(unit));
}

}  // namespace medgpt::model
