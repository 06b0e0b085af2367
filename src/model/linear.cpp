#include "model/linear.hpp"

#include "model/nf4.hpp"
#include "parallel/tensor_parallel.hpp"

namespace medgpt::model {

namespace {

// The base layer on `x`, with `w` and `b` possibly routed through a tp collective.
at::Tensor base(const Linear& l, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return l.nf4 ? nf4_linear(x, *l.nf4, b) : at::linear(x, w, b);
}

}  // namespace

at::Tensor Linear::operator()(const at::Tensor& x) const {
  if (!tp || role == ParallelRole::kColumn) return with_adapter(base(*this, x, weight, bias), x);
  if (role == ParallelRole::kRow) {
    const at::Tensor y = parallel::reduce_from_tp(base(*this, x, weight, {}), *tp);
    return with_adapter(bias.defined() ? y + bias : y, x);
  }
  // Replicated, used for this rank's heads only: gradients summed over tp (an NF4 weight is
  // frozen, only its bias may need the sum).
  auto shared = [&](const at::Tensor& t) { return t.defined() && t.requires_grad() ? parallel::copy_to_tp(t, *tp) : t; };
  return with_adapter(base(*this, x, shared(weight), shared(bias)), x);
}

int Linear::split_dim(bool is_bias) const { return tp && tp->size() > 1 ? role_split_dim(role, is_bias) : -1; }

std::int64_t Linear::in_features() const {
  const std::int64_t local = weight.defined() ? weight.size(1) : nf4->shape.at(1);
  return split_dim() == 1 ? local * tp->size() : local;
}

std::int64_t Linear::out_features() const {
  const std::int64_t local = weight.defined() ? weight.size(0) : nf4->shape.at(0);
  return split_dim() == 0 ? local * tp->size() : local;
}

}  // namespace medgpt::model
