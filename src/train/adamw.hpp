// AdamW as torch.optim.AdamW (decoupled weight decay applied first, bias-corrected moments, eps
// added after the bias-corrected sqrt) over a range of the flat fp32 parameter vector: all of it,
// or this data-parallel rank's ZeRO-1 shard. Weight decay follows Hugging Face Trainer's groups
// (none on biases and norm weights, see FlatParams); moments are fp32.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace medgpt::train {

class FlatParams;

struct AdamWOptions {
  double lr = 5e-5;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  // Decay every parameter (plain torch.optim.AdamW over model.parameters()) instead of the
  // Trainer's groups; read by FlatParams.
  bool decay_all = false;
};

// transformers' get_decay_parameter_names: biases and norm weights get no weight decay.
bool decays(const std::string& name);

class AdamW {
 public:
  // Updates flat elements [lo, hi) (hi < 0: to the end).
  AdamW(const FlatParams& flat, AdamWOptions opt, std::int64_t lo = 0, std::int64_t hi = -1);
  // One update of the master range from the gradient range with learning rate `lr`.
  void step(FlatParams& flat, double lr);
  std::int64_t steps() const { return t_; }
  std::int64_t lo() const { return lo_; }
  std::int64_t hi() const { return hi_; }

  // State for checkpoints: first and second moments of the range, and the step count.
  const at::Tensor& exp_avg() const { return m_; }
  const at::Tensor& exp_avg_sq() const { return v_; }
  void set_state(const at::Tensor& m, const at::Tensor& v, std::int64_t steps);

 private:
  AdamWOptions opt_;
  std::int64_t lo_, hi_, t_ = 0;
  at::Tensor m_, v_;
  std::vector<std::pair<std::int64_t, std::int64_t>> decayed_;  // [begin, end) inside the range, relative to lo
};

}  // namespace medgpt::train
