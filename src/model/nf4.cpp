#include "model/nf4.hpp"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include "model/transformer.hpp"
#include "util/error.hpp"

namespace medgpt::model {

namespace {

// Index of the entry of `code` (ascending, distinct) nearest to s, as torch.argmin(|s - code|)
// picks it: the distances are compared as float32 and the first (lowest) index wins a tie.
inline int nearest(const float* code, int n, float s) {
  const int p = static_cast<int>(std::lower_bound(code, code + n, s) - code);  // code[p-1] < s <= code[p]
  auto d = [&](int i) { return std::fabs(s - code[i]); };
  int best = std::min(p, n - 1);
  if (p > 0 && d(p - 1) <= d(best)) best = p - 1;
  while (best > 0 && d(best - 1) == d(best)) --best;  // distances equal after rounding: argmin takes the first
  return best;
}

at::Tensor as_float_vector(const at::Tensor& x) { return x.detach().to(at::kFloat).contiguous().view({-1}); }

template <typename T>
void dequantize_into(T* out, const std::uint8_t* packed, const float* absmax, const float* code, std::int64_t n,
                     std::int64_t blocksize) {
  at::parallel_for(0, (n + 1) / 2, 16384, [&](std::int64_t j0, std::int64_t j1) {
    for (std::int64_t j = j0; j < j1; ++j) {
      const std::uint8_t b = packed[j];
      const std::int64_t i = 2 * j;
      out[i] = static_cast<T>(code[b >> 4] * absmax[i / blocksize]);
      if (i + 1 < n) out[i + 1] = static_cast<T>(code[b & 15] * absmax[(i + 1) / blocksize]);
    }
  });
}

// x @ W^T for an NF4 W; the saved state is the quantized tensors only.
struct Nf4MatMul : public torch::autograd::Function<Nf4MatMul> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const Nf4Weight& w) {
    auto& s = ctx->saved_data;
    s["shape"] = c10::IValue(w.shape);
    s["dtype"] = static_cast<std::int64_t>(w.dtype);
    s["blocksize"] = w.blocksize;
    s["packed"] = w.packed;
    s["absmax"] = w.absmax;
    s["double_quant"] = w.double_quant;
    if (w.double_quant) {
      s["nested_absmax"] = w.nested_absmax;
      s["nested_code"] = w.nested_code;
      s["offset"] = static_cast<double>(w.offset);
    }
    return at::linear(x, nf4_dequantize(w, x.scalar_type()));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grad) {
    auto& s = ctx->saved_data;
    Nf4Weight w;
    w.shape = s["shape"].toIntVector();
    w.dtype = static_cast<at::ScalarType>(s["dtype"].toInt());
    w.blocksize = s["blocksize"].toInt();
    w.packed = s["packed"].toTensor();
    w.absmax = s["absmax"].toTensor();
    w.double_quant = s["double_quant"].toBool();
    if (w.double_quant) {
      w.nested_absmax = s["nested_absmax"].toTensor();
      w.nested_code = s["nested_code"].toTensor();
      w.offset = static_cast<float>(s["offset"].toDouble());
    }
    const at::Tensor& g = grad[0];
    return {at::matmul(g, nf4_dequantize(w, g.scalar_type())), at::Tensor()};
  }
};

}  // namespace

std::int64_t Nf4Weight::numel() const {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::int64_t Nf4Weight::bytes() const {
  std::int64_t b = 0;
  for (const at::Tensor* t : {&packed, &absmax, &nested_absmax, &nested_code})
    if (t->defined()) b += t->numel() * static_cast<std::int64_t>(t->element_size());
  return b;
}

const std::array<float, 16>& nf4_code_values() {
  static const std::array<float, 16> code = {
      -1.0f,
      -0.6961928009986877f,
      -0.5250730514526367f,
      -0.39491748809814453f,
      -0.28444138169288635f,
      -0.18477343022823334f,
      -0.09105003625154495f,
      0.0f,
      0.07958029955625534f,
      0.16093020141124725f,
      0.24611230194568634f,
      0.33791524171829224f,
      0.44070982933044434f,
      0.5626170039176941f,
      0.7229568362236023f,
      1.0f,
  };
  return code;
}

at::Tensor nf4_code() {
  const auto& c = nf4_code_values();
  return at::tensor(std::vector<float>(c.begin(), c.end()), at::kFloat);
}

at::Tensor dynamic_map() {
  // bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8).
  std::vector<float> data;
  for (int i = 0; i < 7; ++i) {
    const std::int64_t items = (std::int64_t{1} << i) + 1;
    const at::Tensor bnd = at::linspace(0.1, 1.0, items, at::kFloat);
    const at::Tensor means = (bnd.slice(0, 0, items - 1) + bnd.slice(0, 1, items)) / 2.0;
    const double scale = std::pow(10.0, i - 6);  // Python's 10 ** (-(7 - 1) + i)
    const at::Tensor pos = means * scale, neg = means * -scale;
    for (const at::Tensor& t : {pos, neg}) {
      const float* p = t.data_ptr<float>();
      data.insert(data.end(), p, p + t.numel());
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  return at::tensor(data, at::kFloat);
}

std::pair<at::Tensor, at::Tensor> quantize_blockwise(const at::Tensor& x_in, const at::Tensor& code_in, std::int64_t blocksize) {
  const at::Tensor x = as_float_vector(x_in), code = as_float_vector(code_in);
  const std::int64_t n = x.numel(), blocks = (n + blocksize - 1) / blocksize;
  const int ncode = static_cast<int>(code.numel());
  at::Tensor q = at::empty({n}, at::kByte), absmax = at::empty({blocks}, at::kFloat);
  const float* xp = x.data_ptr<float>();
  const float* cp = code.data_ptr<float>();
  std::uint8_t* qp = q.data_ptr<std::uint8_t>();
  float* ap = absmax.data_ptr<float>();
  at::parallel_for(0, blocks, 64, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t lo = b * blocksize, hi = std::min(n, lo + blocksize);
      float m = 0.0f;
      for (std::int64_t i = lo; i < hi; ++i) m = std::max(m, std::fabs(xp[i]));
      ap[b] = m;
      const float r = 1.0f / m;
      for (std::int64_t i = lo; i < hi; ++i) {
        const float s = m > 0.0f ? std::clamp(xp[i] * r, -1.0f, 1.0f) : 0.0f;
        qp[i] = static_cast<std::uint8_t>(nearest(cp, ncode, s));
      }
    }
  });
  return {q, absmax};
}

at::Tensor dequantize_blockwise(const at::Tensor& q_in, const at::Tensor& absmax_in, const at::Tensor& code_in, std::int64_t blocksize) {
  const at::Tensor q = q_in.contiguous().view({-1}), absmax = as_float_vector(absmax_in), code = as_float_vector(code_in);
  const std::int64_t n = q.numel();
  at::Tensor out = at::empty({n}, at::kFloat);
  const std::uint8_t* qp = q.data_ptr<std::uint8_t>();
  const float* ap = absmax.data_ptr<float>();
  const float* cp = code.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for (std::int64_t i = 0; i < n; ++i) op[i] = cp[qp[i]] * ap[i / blocksize];
  return out;
}

Nf4Weight nf4_quantize(const at::Tensor& w, bool double_quant, std::int64_t blocksize) {
  const auto t = w.scalar_type();
  if (t != at::kFloat && t != at::kBFloat16 && t != at::kHalf)
    util::fail("nf4", std::string("cannot quantize a ") + c10::toString(t) + " tensor", "pass fp32, bf16 or fp16 weights");
  if (blocksize <= 0 || blocksize % 2 != 0) util::fail("nf4", "blocksize " + std::to_string(blocksize) + " is not even", "use 64");
  Nf4Weight out;
  out.shape = w.sizes().vec();
  out.dtype = t;
  out.blocksize = blocksize;
  const at::Tensor x = as_float_vector(w);
  const std::int64_t n = x.numel(), blocks = (n + blocksize - 1) / blocksize;
  out.packed = at::zeros({(n + 1) / 2, 1}, at::kByte);
  at::Tensor absmax = at::empty({blocks}, at::kFloat);
  const float* xp = x.data_ptr<float>();
  const float* code = nf4_code_values().data();
  std::uint8_t* pp = out.packed.data_ptr<std::uint8_t>();
  float* ap = absmax.data_ptr<float>();
  // Blocks start at even offsets (blocksize is even), so no byte is shared between two threads.
  at::parallel_for(0, blocks, 256, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t lo = b * blocksize, hi = std::min(n, lo + blocksize);
      float m = 0.0f;
      for (std::int64_t i = lo; i < hi; ++i) m = std::max(m, std::fabs(xp[i]));
      ap[b] = m;
      const float r = 1.0f / m;  // bitsandbytes scales by the reciprocal: x * (1 / absmax)
      for (std::int64_t i = lo; i < hi; ++i) {
        const float s = m > 0.0f ? std::clamp(xp[i] * r, -1.0f, 1.0f) : 0.0f;
        const auto q = static_cast<std::uint8_t>(nearest(code, 16, s));
        pp[i / 2] |= (i % 2 == 0) ? static_cast<std::uint8_t>(q << 4) : q;
      }
    }
  });
  if (n % 2 != 0) pp[n / 2] |= static_cast<std::uint8_t>(nearest(code, 16, 0.0f));  // padded with 0.0, as bitsandbytes
  if (!double_quant) {
    out.absmax = absmax;
    return out;
  }
  // compress_statistics: offset = mean(absmax); (absmax - offset) blockwise 8-bit, blocks of 256.
  out.double_quant = true;
  out.offset = absmax.mean().item<float>();
  out.nested_code = dynamic_map();
  std::tie(out.absmax, out.nested_absmax) = quantize_blockwise(absmax - out.offset, out.nested_code, Nf4Weight::kNestedBlocksize);
  return out;
}

at::Tensor nf4_absmax(const Nf4Weight& w) {
  if (!w.double_quant) return w.absmax;
  return dequantize_blockwise(w.absmax, w.nested_absmax, w.nested_code, Nf4Weight::kNestedBlocksize) + w.offset;
}

at::Tensor nf4_indices(const Nf4Weight& w) {
  const at::Tensor p = w.packed.view({-1});
  return at::stack({p.__rshift__(4), p.__and__(15)}, 1).view({-1}).slice(0, 0, w.numel()).contiguous();
}

at::Tensor nf4_dequantize(const Nf4Weight& w, at::ScalarType dtype) {
  const at::Tensor absmax = nf4_absmax(w).contiguous();
  const std::int64_t n = w.numel();
  at::Tensor out = at::empty({n}, at::TensorOptions().dtype(dtype));
  const std::uint8_t* p = w.packed.data_ptr<std::uint8_t>();
  const float* a = absmax.data_ptr<float>();
  const float* code = nf4_code_values().data();
  // fp32 products, rounded once to the output dtype (c10's casts round to nearest even, as .to()).
  switch (dtype) {
    case at::kFloat: dequantize_into(out.data_ptr<float>(), p, a, code, n, w.blocksize); break;
    case at::kBFloat16: dequantize_into(out.data_ptr<at::BFloat16>(), p, a, code, n, w.blocksize); break;
    case at::kHalf: dequantize_into(out.data_ptr<at::Half>(), p, a, code, n, w.blocksize); break;
    case at::kDouble: dequantize_into(out.data_ptr<double>(), p, a, code, n, w.blocksize); break;  // exact: the fp32 values
    default: util::fail("nf4", std::string("cannot dequantize to ") + c10::toString(dtype), "use fp32, bf16, fp16 or fp64");
  }
  return out.view(w.shape);
}

at::Tensor nf4_linear(const at::Tensor& x, const Nf4Weight& w, const at::Tensor& bias) {
  if (!at::GradMode::is_enabled() || !x.requires_grad()) return at::linear(x, nf4_dequantize(w, x.scalar_type()), bias);
  at::Tensor y = Nf4MatMul::apply(x, w);
  return bias.defined() ? y + bias : y;
}

void quantize_nf4(Transformer& m, bool double_quant) {
  at::NoGradGuard no_grad;
  for (Block& b : m.blocks())
    for (Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down}) {
      if (l->nf4) continue;
      l->nf4 = std::make_shared<Nf4Weight>(nf4_quantize(l->weight, double_quant));
      l->weight = at::Tensor();
    }
}

}  // namespace medgpt::model
