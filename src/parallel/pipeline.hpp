// Runs micro-batches through this rank's pipeline stage over the pp communicator: 1F1B for a
// training step (parallel/pipeline_schedule.hpp), forward-only for evaluation. Activations go to
// the next stage and their gradients come back point to point. A forward followed by a backward
// sends the activation and receives the gradient in one sendrecv (and a backward followed by a
// forward the reverse), pairing with the neighbour's opposite step as Megatron's p2p_communication
// does, so no two stages wait on each other's send.
#pragma once

#include <ATen/ATen.h>

#include <functional>

#include "parallel/comm.hpp"

namespace medgpt::parallel {

class Pipeline {
 public:
  // What a stage computes; the pipeline moves the tensors between stages.
  struct Stage {
    // Micro-batch i on this stage: `input` is the previous stage's output (requires grad when
    // training; undefined on the first stage). Returns the output to send on, or on the last
    // stage the loss (a scalar).
    std::function<at::Tensor(int micro, const at::Tensor& input)> forward;
    // An empty tensor shaped like micro-batch i's activation (what the previous stage sends).
    std::function<at::Tensor(int micro)> activation_like;
    // After micro-batch i's backward on this stage (e.g. to collect gradients).
    std::function<void(int micro)> after_backward;
  };

  explicit Pipeline(Comm& pp) : pp_(pp) {}
  bool first() const { return pp_.rank() == 0; }
  bool last() const { return pp_.rank() == pp_.size() - 1; }

  // One training step over `micro` micro-batches in 1F1B order. Returns the sum of the losses on
  // the last stage, 0 elsewhere.
  double train(int micro, const Stage& stage);
  // Forward passes only (no gradients), one micro-batch after the other. Same return.
  double forward_only(int micro, const Stage& stage);

  // Seconds spent waiting in point-to-point calls since construction (the bubble and transfers).
  double wait_seconds() const { return wait_; }

 private:
  // One tag for all pipeline traffic: towards the next stage flow only activations, towards the
  // previous one only their gradients, each in order.
  static constexpr int kTag = 11;
  void send(const at::Tensor& t, int peer);
  void recv(const at::Tensor& into, int peer);
  void sendrecv(const at::Tensor& out, int to, const at::Tensor& in, int from);

  Comm& pp_;
  double wait_ = 0;
};

}  // namespace medgpt::parallel
