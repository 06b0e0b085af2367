#include "model/lm_loss.hpp"

#include <torch/csrc/autograd/custom_function.h>

namespace medgpt::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FusedLmLoss : public torch::autograd::Function<FusedLmLoss> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& labels,
                            double normalizer, std::int64_t chunk) {
    const bool need_h = hidden.requires_grad(), need_w = head.requires_grad();
    at::Tensor grad_h = need_h ? at::zeros_like(hidden) : at::Tensor();
    at::Tensor grad_w = need_w ? at::zeros(head.sizes(), head.options().dtype(at::kFloat)) : at::Tensor();
    at::Tensor total = at::zeros({}, at::kDouble);
    const std::int64_t N = hidden.size(0);
    for (std::int64_t s = 0; s < N; s += chunk) {
      const std::int64_t n = std::min(chunk, N - s);
      at::Tensor h = hidden.narrow(0, s, n);
      at::Tensor y = labels.narrow(0, s, n);
      at::Tensor valid = y.ne(kIgnoreIndex);
      if (!valid.any().item<bool>()) continue;
      at::Tensor target = y.clamp_min(0);
      // Logits in the model dtype, the loss in float32 (transformers: logits.float()).
      at::Tensor logits = at::linear(h, head).to(at::kFloat);
      at::Tensor lse = logits.logsumexp(-1);
      at::Tensor picked = logits.gather(1, target.unsqueeze(1)).squeeze(1);
      total += ((lse - picked) * valid).sum().to(at::kDouble);
      if (need_h || need_w) {
        // d loss / d logits = (softmax - onehot) / normalizer on valid rows.
        at::Tensor g = (logits - lse.unsqueeze(1)).exp_();
        g.scatter_add_(1, target.unsqueeze(1), at::full({n, 1}, -1.0, g.options()));
        g.mul_((valid.to(at::kFloat) / normalizer).unsqueeze(1));
        if (need_h) grad_h.narrow(0, s, n).copy_(at::matmul(g.to(head.scalar_type()), head));
        if (need_w) grad_w.add_(at::matmul(g.t(), h.to(at::kFloat)));
      }
    }
    ctx->saved_data["grad_h"] = grad_h;
    ctx->saved_data["grad_w"] = need_w ? grad_w.to(head.scalar_type()) : grad_w;
    return (total / normalizer).to(at::kFloat);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const at::Tensor g = grad_out[0];
    at::Tensor gh = ctx->saved_data["grad_h"].toTensor(), gw = ctx->saved_data["grad_w"].toTensor();
    return {gh.defined() ? gh * g.to(gh.scalar_type()) : at::Tensor(), gw.defined() ? gw * g.to(gw.scalar_type()) : at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor lm_loss(const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& labels, double normalizer,
                   std::int64_t chunk_rows) {
  return FusedLmLoss::apply(hidden, head, labels, normalizer, chunk_rows);
}

at::Tensor shift_labels(const at::Tensor& labels) {
  at::Tensor out = at::full_like(labels, kIgnoreIndex);
  const std::int64_t T = labels.size(-1);
  if (T > 1) out.narrow(-1, 0, T - 1).copy_(labels.narrow(-1, 1, T - 1));
  return out;
}

}  // namespace medgpt::model
