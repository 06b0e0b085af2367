// AdamW as torch.optim.AdamW (decoupled weight decay applied first, bias-corrected moments,
// eps added after the bias-corrected sqrt), with Hugging Face Trainer's parameter groups: no decay
// on biases and norm weights. Moments are kept in float32 whatever the parameter dtype.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace medgpt::train {

struct AdamWOptions {
  double lr = 5e-5;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  // Decay every parameter (plain torch.optim.AdamW over model.parameters()) instead of the
  // Trainer's groups.
  bool decay_all = false;
};

// transformers' get_decay_parameter_names: biases and norm weights get no weight decay.
bool decays(const std::string& name);

class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions opt);
  // One update with learning rate `lr` from each parameter's .grad() (parameters without a
  // gradient are skipped, as torch does).
  void step(double lr);
  void step() { step(opt_.lr); }
  void zero_grad();
  std::int64_t steps() const { return t_; }

 private:
  struct Slot {
    std::string name;
    at::Tensor param, m, v;
    bool decay;
  };
  std::vector<Slot> slots_;
  AdamWOptions opt_;
  std::int64_t t_ = 0;
};

}  // namespace medgpt::train
