#include "model/kv_cache.hpp"

namespace medgpt::model {

std::pair<at::Tensor, at::Tensor> KvCache::append(std::size_t layer, const at::Tensor& k_new, const at::Tensor& v_new) {
  if (k.size() <= layer) k.resize(layer + 1), v.resize(layer + 1);
  const std::int64_t T = k_new.size(2), need = length + T;
  at::Tensor& K = k[layer];
  at::Tensor& V = v[layer];
  if (!K.defined() || K.size(2) < need) {  // grow by whole chunks, keeping what is there
    const std::int64_t cap = (need + chunk - 1) / chunk * chunk;
    at::Tensor K2 = at::empty({k_new.size(0), k_new.size(1), cap, k_new.size(3)}, k_new.options());
    at::Tensor V2 = at::empty_like(K2);
    if (K.defined() && length > 0) {
      K2.narrow(2, 0, length).copy_(K.narrow(2, 0, length));
      V2.narrow(2, 0, length).copy_(V.narrow(2, 0, length));
    }
    K = K2;
    V = V2;
  }
  K.narrow(2, length, T).copy_(k_new);
  V.narrow(2, length, T).copy_(v_new);
  return {K.narrow(2, 0, need), V.narrow(2, 0, need)};
}

}  // namespace medgpt::model
