// Chunked attention (FlashAttention's online softmax) against the eager formula the model uses:
// softmax(q k^T * scale + mask) v with masked scores at float's lowest, in fp32. Outputs and the
// gradients of q, k and v agree within 1e-5 for causal rows, right and left padding (rows that see
// no key included), packed samples, a KV-cache offset, and blocks that do not divide the length.
#include <gtest/gtest.h>

#include <limits>

#include "model/chunked_attention.hpp"

using namespace medgpt;

namespace {

// The eager path of Transformer::stage_forward + attention, for one mask.
at::Tensor eager(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const model::AttentionMask& m, double scale) {
  const std::int64_t B = q.size(0), T = q.size(2), keys = k.size(2);
  at::Tensor allowed = at::ones({T, keys}, at::kBool).tril(m.past).view({1, 1, T, keys});
  if (m.key_mask.defined()) allowed = allowed.logical_and(m.key_mask.to(at::kBool).view({B, 1, 1, keys}));
  if (m.segment_ids.defined()) allowed = allowed.logical_and(m.segment_ids.view({B, 1, T, 1}).eq(m.segment_ids.view({B, 1, 1, T})));
  const at::Tensor mask = at::zeros(allowed.sizes(), at::kFloat).masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  return at::matmul(at::softmax(at::matmul(q, k.transpose(2, 3)) * scale + mask, -1), v);
}

struct Grads {
  at::Tensor out, dq, dk, dv;
};

Grads run(bool chunked, const at::Tensor& q0, const at::Tensor& k0, const at::Tensor& v0, const at::Tensor& upstream,
          const model::AttentionMask& m, std::int64_t block) {
  const at::Tensor q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true), v = v0.clone().requires_grad_(true);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  const at::Tensor out = chunked ? model::chunked_attention(q, k, v, m, scale, block) : eager(q, k, v, m, scale);
  (out * upstream).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

void expect_same(const model::AttentionMask& m, std::int64_t B, std::int64_t T, std::int64_t keys, std::int64_t block, const char* what) {
  at::manual_seed(7);
  const std::int64_t H = 3, D = 8;
  const at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, H, keys, D}), v = at::randn({B, H, keys, D}), up = at::randn({B, H, T, D});
  const Grads a = run(false, q, k, v, up, m, block), b = run(true, q, k, v, up, m, block);
  EXPECT_LT((a.out - b.out).abs().max().item<double>(), 1e-5) << what << ": output";
  EXPECT_LT((a.dq - b.dq).abs().max().item<double>(), 1e-5) << what << ": dq";
  EXPECT_LT((a.dk - b.dk).abs().max().item<double>(), 1e-5) << what << ": dk";
  EXPECT_LT((a.dv - b.dv).abs().max().item<double>(), 1e-5) << what << ": dv";
}

}  // namespace

TEST(ChunkedAttention, EqualsEagerForEveryMask) {
  const std::int64_t B = 2, T = 37;
  expect_same({}, B, T, T, 8, "causal");
  expect_same({}, B, T, T, 64, "causal, one block");
  // Right padding (rows past the end see no key) and left padding (the first rows see none).
  at::Tensor pad = at::ones({B, T}, at::kLong);
  pad[0].narrow(0, 30, 7).zero_();
  pad[1].narrow(0, 0, 5).zero_();
  expect_same({0, pad, {}}, B, T, T, 8, "padding");
  // Packed samples: lengths 10, 15, 9 and 3 padding positions (segment -1) in row 0; 37 in row 1.
  at::Tensor seg = at::zeros({B, T}, at::kLong);
  seg[0].narrow(0, 10, 15).fill_(1);
  seg[0].narrow(0, 25, 9).fill_(2);
  seg[0].narrow(0, 34, 3).fill_(-1);
  at::Tensor real = at::ones({B, T}, at::kLong);
  real[0].narrow(0, 34, 3).zero_();
  expect_same({0, real, seg}, B, T, T, 8, "packed");
  // A KV cache: 5 new queries after 32 cached keys, the first key of row 1 padding.
  at::Tensor cached = at::ones({B, 37}, at::kLong);
  cached[1][0] = 0;
  expect_same({32, cached, {}}, B, 5, 37, 8, "cache");
}

TEST(ChunkedAttention, Bf16InputsGiveBf16OutputsWithinBf16Precision) {
  at::manual_seed(3);
  const at::Tensor q = at::randn({1, 2, 20, 8}), k = at::randn({1, 2, 20, 8}), v = at::randn({1, 2, 20, 8});
  const at::Tensor ref = model::chunked_attention(q, k, v, {}, 0.35, 8);
  const at::Tensor got = model::chunked_attention(q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16), {}, 0.35, 8);
  EXPECT_EQ(got.scalar_type(), at::kBFloat16);
  // bf16 inputs carry 2^-9 relative rounding; |v| < 5 here: outputs within a few bf16 steps of fp32's.
  EXPECT_LT((got.to(at::kFloat) - ref).abs().max().item<double>(), 0.05);
}
