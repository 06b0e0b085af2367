#include "model/rope.hpp"

#include <cmath>

namespace medgpt::model {

at::Tensor rope_inv_freq(const ModelConfig& c, std::int64_t seq_len) {
  const std::int64_t dim = c.head_dim;
  const auto& s = c.rope_scaling;
  double base = c.rope_theta;
  if (s.type == "dynamic" && seq_len > c.max_position_embeddings) {
    const double ratio = s.factor * static_cast<double>(seq_len) / static_cast<double>(c.max_position_embeddings) - (s.factor - 1);
    base *= std::pow(ratio, static_cast<double>(dim) / static_cast<double>(dim - 2));
  }
  // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), all in float32.
  at::Tensor exponent = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor inv = 1.0 / at::pow(base, exponent);
  if (s.type == "linear") {
    inv = inv / s.factor;
  } else if (s.type == "llama3") {
    const double L = static_cast<double>(s.original_max_position_embeddings);
    const double low_wl = L / s.low_freq_factor, high_wl = L / s.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv;
    at::Tensor scaled = at::where(wavelen > low_wl, inv / s.factor, inv);
    at::Tensor smooth = (L / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    at::Tensor medium = (wavelen >= high_wl).logical_and(wavelen <= low_wl);
    inv = at::where(medium, smoothed, scaled);
  }
  return inv;
}

std::pair<at::Tensor, at::Tensor> rope_tables(const at::Tensor& inv_freq, const at::Tensor& positions, at::ScalarType dtype) {
  // freqs [B, T, D/2] = positions (float32) x inv_freq; emb = cat(freqs, freqs).
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.view({1, 1, -1});
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const std::int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);
  return x * c + rotated * s;
}

}  // namespace medgpt::model
