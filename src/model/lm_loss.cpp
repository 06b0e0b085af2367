#include "model/lm_loss.hpp"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

namespace medgpt::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FusedLmLoss : public torch::autograd::Function<FusedLmLoss> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& labels,
                            double normalizer, std::int64_t chunk, std::int64_t tp_handle, std::int64_t vocab_start) {
    dist::Comm* tp = reinterpret_cast<dist::Comm*>(static_cast<std::intptr_t>(tp_handle));
    const std::int64_t rows = head.size(0);
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
      // Every tp rank walks the same chunks (they hold the same labels), so skipping is safe.
      if (!valid.any().item<bool>()) continue;
      // This rank's columns of the target: ids outside [vocab_start, vocab_start + rows) are not here.
      at::Tensor local = y - vocab_start;
      at::Tensor here = valid.logical_and(local.ge(0)).logical_and(local.lt(rows));
      at::Tensor target = local.clamp(0, rows - 1);
      // Logits in the model dtype, the loss in float32 (transformers: logits.float()).
      at::Tensor logits = at::linear(h, head).to(at::kFloat);
      at::Tensor lse, picked = logits.gather(1, target.unsqueeze(1)).squeeze(1) * here;
      if (!tp) {
        lse = logits.logsumexp(-1);
      } else {  // log-sum-exp over the whole vocabulary from each rank's max and sum
        at::Tensor m = std::get<0>(logits.max(-1));
        tp->allreduce(m, dist::ReduceOp::kMax);
        at::Tensor se = (logits - m.unsqueeze(1)).exp().sum(-1);
        tp->allreduce(se, dist::ReduceOp::kSum);
        lse = m + se.log();
        tp->allreduce(picked, dist::ReduceOp::kSum);
      }
      total += ((lse - picked) * valid).sum().to(at::kDouble);
      if (need_h || need_w) {
        // d loss / d logits = (softmax - onehot) / normalizer on valid rows.
        at::Tensor g = (logits - lse.unsqueeze(1)).exp_();
        g.scatter_add_(1, target.unsqueeze(1), -here.to(at::kFloat).unsqueeze(1));
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
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor lm_loss(const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& labels, double normalizer,
                   std::int64_t chunk_rows, dist::Comm* tp, std::int64_t vocab_start) {
  if (tp && tp->size() == 1) tp = nullptr;
  // Without grad mode (evaluation, reference models) no gradient is formed in the forward pass.
  const bool grad = at::GradMode::is_enabled();
  return FusedLmLoss::apply(grad ? hidden : hidden.detach(), grad ? head : head.detach(), labels, normalizer, chunk_rows,
                            static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(tp)), vocab_start);
}

at::Tensor shift_labels(const at::Tensor& labels) {
  at::Tensor out = at::full_like(labels, kIgnoreIndex);
  const std::int64_t T = labels.size(-1);
  if (T > 1) out.narrow(-1, 0, T - 1).copy_(labels.narrow(-1, 1, T - 1));
  return out;
}

}  // namespace medgpt::model
