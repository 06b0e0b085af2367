#include "train/adamw.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "train/flat_params.hpp"
#include "util/error.hpp"

namespace medgpt::train {

bool decays(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (n.find("bias") != std::string::npos || n.find("layernorm") != std::string::npos || n.find("rmsnorm") != std::string::npos)
    return false;
  // "(^|\.)norm($|\.)" and "_norm($|\.)"
  for (std::size_t p = n.find("norm"); p != std::string::npos; p = n.find("norm", p + 1)) {
    const bool end_ok = p + 4 == n.size() || n[p + 4] == '.';
    const bool start_dot = p == 0 || n[p - 1] == '.';
    const bool start_us = p > 0 && n[p - 1] == '_';
    if (end_ok && (start_dot || start_us)) return false;
  }
  return true;
}

AdamW::AdamW(const FlatParams& flat, AdamWOptions opt, std::int64_t lo, std::int64_t hi)
    : opt_(opt), lo_(lo), hi_(hi < 0 ? flat.padded() : hi) {
  if (lo_ < 0 || lo_ > hi_ || hi_ > flat.padded()) util::fail("AdamW", "range outside the parameter vector", "internal error");
  m_ = at::zeros({hi_ - lo_}, at::kFloat);
  v_ = at::zeros({hi_ - lo_}, at::kFloat);
  for (const FlatSegment& s : flat.segments()) {
    const std::int64_t b = std::max(lo_, s.offset), e = std::min(hi_, s.offset + s.numel);
    if (s.decay && b < e) {
      if (!decayed_.empty() && decayed_.back().second == b - lo_) decayed_.back().second = e - lo_;
      else decayed_.emplace_back(b - lo_, e - lo_);
    }
  }
}

void AdamW::step(FlatParams& flat, double lr) {
  at::NoGradGuard no_grad;
  ++t_;
  const std::int64_t n = hi_ - lo_;
  if (n == 0) return;
  const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(t_));
  at::Tensor p = flat.master_range(lo_, hi_);
  const at::Tensor g = flat.grad_range(lo_, hi_);
  if (opt_.weight_decay != 0)
    for (const auto& [b, e] : decayed_) p.narrow(0, b, e - b).mul_(1.0 - lr * opt_.weight_decay);
  // Elementwise, so done in cache-sized chunks: the same numbers, without vector-sized temporaries.
  constexpr std::int64_t kChunk = 1 << 18;
  for (std::int64_t b = 0; b < n; b += kChunk) {
    const std::int64_t len = std::min(kChunk, n - b);
    at::Tensor m = m_.narrow(0, b, len), v = v_.narrow(0, b, len), gc = g.narrow(0, b, len);
    m.lerp_(gc, 1.0 - opt_.beta1);
    v.mul_(opt_.beta2).addcmul_(gc, gc, 1.0 - opt_.beta2);
    const at::Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(opt_.eps);
    p.narrow(0, b, len).addcdiv_(m, denom, -lr / bc1);
  }
}

void AdamW::set_state(const at::Tensor& m, const at::Tensor& v, std::int64_t steps) {
  if (m.numel() != m_.numel() || v.numel() != v_.numel())
    util::fail("optimizer state", "holds " + std::to_string(m.numel()) + " elements, this run's shard has " + std::to_string(m_.numel()),
               "resume with the same model, trainable parameters and data-parallel layout");
  m_.copy_(m.reshape({-1}));
  v_.copy_(v.reshape({-1}));
  t_ = steps;
}

}  // namespace medgpt::train
