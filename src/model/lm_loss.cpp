#include "model/lm_loss.hpp"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include "model/upcast.hpp"

namespace medgpt::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FusedLmLoss : public torch::autograd::Function<FusedLmLoss> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& labels,
                            double normalizer, std::int64_t chunk, std::int64_t tp_handle, std::int64_t vocab_start) {
    parallel::Comm* tp = reinterpret_cast<parallel::Comm*>(static_cast<std::intptr_t>(tp_handle));
    const std::int64_t rows = head.size(0), N = hidden.size(0);
    const bool need_h = hidden.requires_grad(), need_w = head.requires_grad();
    const at::ScalarType f = upcast(hidden.scalar_type());
    at::Tensor grad_h = need_h ? at::empty_like(hidden) : at::Tensor();
    at::Tensor grad_w;  // the first chunk's product as is; summed in float32 over more chunks
    at::Tensor total = at::zeros({}, at::kDouble);
    for (std::int64_t s = 0; s < N; s += chunk) {
      const std::int64_t n = std::min(chunk, N - s);
      at::Tensor h = hidden.narrow(0, s, n);
      at::Tensor y = labels.narrow(0, s, n);
      at::Tensor valid = y.ne(kIgnoreIndex);
      // Every tp rank walks the same chunks (they hold the same labels), so skipping is safe.
      if (!valid.any().item<bool>()) {
        if (need_h) grad_h.narrow(0, s, n).zero_();
        continue;
      }
      // This rank's columns of the target: ids outside [vocab_start, vocab_start + rows) are not here.
      at::Tensor local = y - vocab_start;
      at::Tensor here = valid.logical_and(local.ge(0)).logical_and(local.lt(rows));
      at::Tensor target = local.clamp(0, rows - 1).unsqueeze(1);
      // Logits in the model dtype, log-probabilities in float32 (transformers: logits.float()).
      at::Tensor logp = at::linear(h, head).to(f);
      if (!tp) {
        logp = at::log_softmax(logp, 1);
      } else {  // log-sum-exp over the whole vocabulary from each rank's max and sum
        at::Tensor m = std::get<0>(logp.max(-1));
        tp->allreduce(m, parallel::ReduceOp::kMax);
        at::Tensor se = (logp - m.unsqueeze(1)).exp_().sum(-1);
        tp->allreduce(se, parallel::ReduceOp::kSum);
        logp.sub_((m + se.log_()).unsqueeze(1));
      }
      at::Tensor picked = logp.gather(1, target).squeeze(1) * here;
      if (tp) tp->allreduce(picked, parallel::ReduceOp::kSum);
      total -= (picked * valid).sum().to(at::kDouble);
      if (need_h || need_w) {
        // d loss / d logits = (softmax - onehot) / normalizer on valid rows, in the model dtype
        // as autograd would hand it to the head's matmul.
        at::Tensor g = logp.exp_();
        g.scatter_add_(1, target, -here.to(f).unsqueeze(1));
        g.mul_((valid.to(f) / normalizer).unsqueeze(1));
        g = g.to(head.scalar_type());
        if (need_h) {
          at::Tensor out = grad_h.narrow(0, s, n);
          at::mm_out(out, g, head);
        }
        if (need_w) {
          at::Tensor gw = at::mm(g.t(), h);
          if (!grad_w.defined()) grad_w = gw;
          else if (grad_w.scalar_type() != f) grad_w = grad_w.to(f).add_(gw);
          else grad_w.add_(gw);
        }
      }
    }
    if (need_w && !grad_w.defined()) grad_w = at::zeros_like(head);
    ctx->saved_data["grad_h"] = grad_h;
    ctx->saved_data["grad_w"] = need_w ? grad_w.to(head.scalar_type()) : grad_w;
    return (total / normalizer).to(f);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const at::Tensor g = grad_out[0];
    TORCH_CHECK(!ctx->saved_data["grad_w"].isNone(), "the fused LM loss was differentiated twice (retain_graph is not supported)");
    // Handed over rather than shared, so autograd may add the other gradients of the same weight
    // (a tied embedding's rows) into it in place.
    at::Tensor gh = ctx->saved_data["grad_h"].toTensor(), gw = ctx->saved_data["grad_w"].toTensor();
    ctx->saved_data["grad_h"] = c10::IValue();
    ctx->saved_data["grad_w"] = c10::IValue();
    // The loss is usually the root of backward (g == 1): no need for another pass over [V, H].
    const bool unit = g.item<double>() == 1.0;
    auto scaled = [&](const at::Tensor& t) { return !t.defined() || unit ? t : t * g.to(t.scalar_type()); };
    return {scaled(gh), scaled(gw),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor lm_loss(const at::Tensor& hidden, const at::Tensor& head, const at::Tensor& labels, double normalizer,
                   std::int64_t chunk_rows, parallel::Comm* tp, std::int64_t vocab_start) {
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
