#include "train/adamw.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

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

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions opt) : opt_(opt) {
  for (auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    const auto f32 = p.options().dtype(at::kFloat);
    slots_.push_back({name, p, at::zeros(p.sizes(), f32), at::zeros(p.sizes(), f32), opt.decay_all || decays(name)});
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  ++t_;
  const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(t_));
  for (auto& s : slots_) {
    const at::Tensor g = s.param.grad();
    if (!g.defined()) continue;
    at::Tensor p = s.param.scalar_type() == at::kFloat ? s.param : s.param.to(at::kFloat);
    const at::Tensor gf = g.to(at::kFloat);
    if (s.decay && opt_.weight_decay != 0) p.mul_(1.0 - lr * opt_.weight_decay);
    s.m.lerp_(gf, 1.0 - opt_.beta1);
    s.v.mul_(opt_.beta2).addcmul_(gf, gf, 1.0 - opt_.beta2);
    const at::Tensor denom = (s.v.sqrt() / std::sqrt(bc2)).add_(opt_.eps);
    p.addcdiv_(s.m, denom, -lr / bc1);
    if (!p.is_same(s.param)) s.param.copy_(p);
  }
}

void AdamW::zero_grad() {
  for (auto& s : slots_) {
    at::Tensor g = s.param.grad();
    if (g.defined()) g.zero_();
  }
}

}  // namespace medgpt::train
