// RMSNorm as transformers computes it, with a hand-written backward pass:
//   y = weight * (x_f32 * rsqrt(mean(x_f32^2, -1) + eps)).to(x.dtype)
// Autograd through that chain records eight operations, two dtype casts among them, and keeps an
// fp32 copy of x; this keeps x and one fp32 scale per row, and its backward is
//   grad_x = r * (g - n * mean(g * n, -1)),  g = grad_y * weight (fp32), n = x_f32 * r,
//   grad_weight = sum over rows of grad_y * n.
#pragma once

#include <ATen/ATen.h>

#include "model/upcast.hpp"

namespace medgpt::model {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace medgpt::model
