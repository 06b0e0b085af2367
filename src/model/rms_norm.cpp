#include "model/rms_norm.hpp"

#include <torch/csrc/autograd/custom_function.h>

namespace medgpt::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// 1 / sqrt(mean(x^2) + eps) per row, in the upcast dtype [..., 1].
at::Tensor inverse_rms(const at::Tensor& xf, double eps) { return xf.pow(2).mean(-1, /*keepdim=*/true).add_(eps).rsqrt_(); }

struct RmsNorm : public torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps) {
    const at::Tensor xf = x.to(upcast(x.scalar_type()));
    const at::Tensor r = inverse_rms(xf, eps);
    ctx->save_for_backward({x, weight, r});
    return weight * (xf * r).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &r = saved[2];
    const at::ScalarType f = upcast(x.scalar_type());
    const at::Tensor gy = grad_out[0].to(f);
    const at::Tensor n = x.to(f) * r;  // not in place: for fp32 x, to() returns x itself
    at::Tensor gx, gw;
    if (ctx->needs_input_grad(0)) {
      const at::Tensor g = gy * weight.to(f);
      gx = (g - n * (g * n).mean(-1, /*keepdim=*/true)).mul_(r).to(x.scalar_type());
    }
    if (ctx->needs_input_grad(1)) {
      // The weight's gradient from the rounded normalised values, as autograd forms it.
      gw = (gy * n.to(x.scalar_type()).to(f)).reshape({-1, weight.numel()}).sum(0).to(weight.scalar_type());
    }
    return {gx, gw, at::Tensor()};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) { return RmsNorm::apply(x, weight, eps); }

}  // namespace medgpt::model
