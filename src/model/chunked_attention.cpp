#include "model/chunked_attention.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <limits>

namespace medgpt::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr double kInf = std::numeric_limits<double>::infinity();

// The mask of one block pair: may query q0 + i see key k0 + j? [B or 1, 1, q1 - q0, k1 - k0].
at::Tensor allowed(const at::Tensor& key_mask, const at::Tensor& segments, std::int64_t past, std::int64_t q0, std::int64_t q1,
                   std::int64_t k0, std::int64_t k1) {
  const at::Tensor qi = at::arange(q0, q1, at::kLong).view({1, 1, -1, 1}), ki = at::arange(k0, k1, at::kLong).view({1, 1, 1, -1});
  at::Tensor a = ki.le(qi + past);
  if (key_mask.numel() > 0) a = a.logical_and(key_mask.narrow(1, k0, k1 - k0).to(at::kBool).view({key_mask.size(0), 1, 1, k1 - k0}));
  if (segments.numel() > 0) {
    const std::int64_t B = segments.size(0);
    a = a.logical_and(segments.narrow(1, q0, q1 - q0).view({B, 1, -1, 1}).eq(segments.narrow(1, k0, k1 - k0).view({B, 1, 1, -1})));
  }
  return a;
}

// The rows of query block [q0, q1) that see no key at all [B, 1, q1 - q0, 1] (padding rows): the
// eager path gives them a uniform softmax over every key.
at::Tensor blind_rows(const at::Tensor& key_mask, const at::Tensor& segments, std::int64_t past, std::int64_t B, std::int64_t q0,
                      std::int64_t q1, std::int64_t keys, std::int64_t block) {
  at::Tensor seen = at::zeros({B, 1, q1 - q0, 1}, at::kBool);
  for (std::int64_t k0 = 0; k0 < keys; k0 += block)
    seen = seen.logical_or(allowed(key_mask, segments, past, q0, q1, k0, std::min(keys, k0 + block)).any(-1, /*keepdim=*/true));
  return seen.logical_not();
}

// Scores of a block pair as the softmax sees them: masked entries -inf, and every entry of a
// blind row 0 (all equal: uniform).
at::Tensor effective_scores(const at::Tensor& s, const at::Tensor& ok, const at::Tensor& blind) {
  const at::Tensor fill = at::where(blind, at::zeros({}, s.options()), at::full({}, -kInf, s.options()));
  return at::where(ok, s, fill);
}

struct ChunkedAttention : public torch::autograd::Function<ChunkedAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                            const at::Tensor& segments, std::int64_t past, double scale, std::int64_t block) {
    const std::int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), keys = k.size(2);
    const at::Tensor qf = q.to(at::kFloat), kf = k.to(at::kFloat), vf = v.to(at::kFloat);
    at::Tensor out = at::empty({B, H, T, D}, qf.options()), lse = at::empty({B, H, T, 1}, qf.options());
    for (std::int64_t q0 = 0; q0 < T; q0 += block) {
      const std::int64_t q1 = std::min(T, q0 + block);
      const at::Tensor qi = qf.narrow(2, q0, q1 - q0), blind = blind_rows(key_mask, segments, past, B, q0, q1, keys, block);
      const bool any_blind = blind.any().item<bool>();
      at::Tensor m = at::full({B, H, q1 - q0, 1}, -kInf, qf.options()), l = at::zeros_like(m), acc = at::zeros({B, H, q1 - q0, D}, qf.options());
      for (std::int64_t k0 = 0; k0 < keys; k0 += block) {
        if (!any_blind && k0 > past + q1 - 1) break;  // above the diagonal: masked for every row
        const std::int64_t k1 = std::min(keys, k0 + block);
        const at::Tensor s = effective_scores(at::matmul(qi, kf.narrow(2, k0, k1 - k0).transpose(2, 3)).mul_(scale),
                                              allowed(key_mask, segments, past, q0, q1, k0, k1), blind);
        const at::Tensor m_new = at::maximum(m, s.amax(-1, /*keepdim=*/true));
        const at::Tensor m_safe = at::where(at::isinf(m_new), at::zeros_like(m_new), m_new);  // no key yet: no -inf - -inf
        const at::Tensor p = (s - m_safe).exp_(), correction = (m - m_safe).exp_();
        l = l * correction + p.sum(-1, /*keepdim=*/true);
        acc = acc * correction + at::matmul(p, vf.narrow(2, k0, k1 - k0));
        m = m_new;
      }
      out.narrow(2, q0, q1 - q0).copy_(acc / l);
      lse.narrow(2, q0, q1 - q0).copy_(m + l.log());
    }
    ctx->save_for_backward({q, k, v, key_mask, segments, out, lse});
    ctx->saved_data["past"] = past;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["block"] = block;
    return out.to(q.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &key_mask = saved[3], &segments = saved[4], &out = saved[5], &lse = saved[6];
    const std::int64_t past = ctx->saved_data["past"].toInt(), block = ctx->saved_data["block"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    const std::int64_t B = q.size(0), T = q.size(2), keys = k.size(2);
    const at::Tensor qf = q.to(at::kFloat), kf = k.to(at::kFloat), vf = v.to(at::kFloat), go = grad_out[0].to(at::kFloat);
    const at::Tensor delta = (go * out).sum(-1, /*keepdim=*/true);  // rowsum(dO * O) [B, H, T, 1]
    at::Tensor dq = at::zeros_like(qf), dk = at::zeros_like(kf), dv = at::zeros_like(vf);
    for (std::int64_t q0 = 0; q0 < T; q0 += block) {
      const std::int64_t q1 = std::min(T, q0 + block), n = q1 - q0;
      const at::Tensor qi = qf.narrow(2, q0, n), gi = go.narrow(2, q0, n), di = delta.narrow(2, q0, n), li = lse.narrow(2, q0, n);
      const at::Tensor blind = blind_rows(key_mask, segments, past, B, q0, q1, keys, block);
      const bool any_blind = blind.any().item<bool>();
      at::Tensor dqi = dq.narrow(2, q0, n);
      for (std::int64_t k0 = 0; k0 < keys; k0 += block) {
        if (!any_blind && k0 > past + q1 - 1) break;
        const std::int64_t k1 = std::min(keys, k0 + block);
        const at::Tensor kj = kf.narrow(2, k0, k1 - k0), vj = vf.narrow(2, k0, k1 - k0);
        const at::Tensor s = effective_scores(at::matmul(qi, kj.transpose(2, 3)).mul_(scale), allowed(key_mask, segments, past, q0, q1, k0, k1), blind);
        const at::Tensor p = (s - li).exp_();
        dv.narrow(2, k0, k1 - k0).add_(at::matmul(p.transpose(2, 3), gi));
        // The eager path's gradient reaches the raw scores through the additive mask: the same here.
        const at::Tensor ds = p * (at::matmul(gi, vj.transpose(2, 3)) - di);
        dqi.add_(at::matmul(ds, kj), scale);
        dk.narrow(2, k0, k1 - k0).add_(at::matmul(ds.transpose(2, 3), qi), scale);
      }
    }
    return {dq.to(q.scalar_type()), dk.to(k.scalar_type()), dv.to(v.scalar_type()), {}, {}, {}, {}, {}};
  }
};

}  // namespace

at::Tensor chunked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask, double scale,
                             std::int64_t block) {
  // Absent masks travel as empty tensors: an autograd function's inputs are defined tensors.
  const at::Tensor none = at::empty({0}, at::kLong);
  return ChunkedAttention::apply(q, k, v, mask.key_mask.defined() ? mask.key_mask : none, mask.segment_ids.defined() ? mask.segment_ids : none,
                                 mask.past, scale, block);
}

}  // namespace medgpt::model
