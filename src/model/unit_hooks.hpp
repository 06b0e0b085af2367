// Hooks around the model's units, for ZeRO-2/3 (train/zero_units.hpp), as FSDP's pre/post forward
// and backward hooks. A stage's units, in forward order: 0 the embedding, 1..L its decoder layers
// (block i is unit i + 1), L + 1 the final norm and the head. The transformer calls
// before_forward/after_forward around each unit (the head has no after_forward: the loss uses it
// outside the model), and puts a boundary on the activation entering each unit u >= 1: in the
// backward pass it calls after_backward(u) (every gradient of unit u is then accumulated) and
// before_backward(u - 1) (unit u - 1's backward is next).
#pragma once

#include <ATen/ATen.h>

namespace medgpt::model {

class UnitHooks {
 public:
  virtual ~UnitHooks() = default;
  virtual void before_forward(int unit) = 0;
  virtual void after_forward(int unit) = 0;
  virtual void before_backward(int unit) = 0;
  virtual void after_backward(int unit) = 0;
};

// x, unchanged; with autograd recording and x requiring grad, a node whose backward calls
// hooks->after_backward(unit) and then hooks->before_backward(unit - 1).
at::Tensor unit_boundary(const at::Tensor& x, UnitHooks* hooks, int unit);

}  // namespace medgpt::model
