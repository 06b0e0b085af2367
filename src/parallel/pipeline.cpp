#include "parallel/pipeline.hpp"

#include <map>

#include "parallel/pipeline_schedule.hpp"
#include "util/clock.hpp"

namespace medgpt::parallel {

void Pipeline::send(const at::Tensor& t, int peer) {
  const auto t0 = util::Clock::now();
  pp_.send(t, peer, kTag);
  wait_ += util::seconds_since(t0);
}

void Pipeline::recv(const at::Tensor& into, int peer) {
  const auto t0 = util::Clock::now();
  pp_.recv(into, peer, kTag);
  wait_ += util::seconds_since(t0);
}

void Pipeline::sendrecv(const at::Tensor& out, int to, const at::Tensor& in, int from) {
  const auto t0 = util::Clock::now();
  pp_.sendrecv(out, to, in, from, kTag);
  wait_ += util::seconds_since(t0);
}

double Pipeline::train(int micro, const Stage& stage) {
  const int prev = pp_.rank() - 1, next = pp_.rank() + 1;
  const std::vector<PipeAction> actions = one_f_one_b(pp_.size(), pp_.rank(), micro);
  // Per micro-batch in flight: the received input (whose gradient goes back), the output (whose
  // backward runs later), and a gradient or input that arrived early through a paired sendrecv.
  std::map<int, at::Tensor> inputs, outputs, early_grads, early_inputs;
  auto take_or_recv = [&](std::map<int, at::Tensor>& early, int micro, int peer) {
    auto it = early.find(micro);
    if (it != early.end()) {
      at::Tensor t = it->second;
      early.erase(it);
      return t;
    }
    at::Tensor t = stage.activation_like(micro);
    recv(t, peer);
    return t;
  };
  double loss = 0;
  for (std::size_t k = 0; k < actions.size(); ++k) {
    const PipeAction a = actions[k];
    const bool then_forward = k + 1 < actions.size() && actions[k + 1].kind == PipeAction::kForward;
    const bool then_backward = k + 1 < actions.size() && actions[k + 1].kind == PipeAction::kBackward;
    if (a.kind == PipeAction::kForward) {
      at::Tensor input;
      if (!first()) input = take_or_recv(early_inputs, a.micro, prev).requires_grad_(true);
      at::Tensor out = stage.forward(a.micro, input);
      if (last()) {
        loss += out.item<double>();
      } else if (then_backward) {  // send this activation, get the gradient of the oldest in flight
        const int b = actions[k + 1].micro;
        at::Tensor grad = stage.activation_like(b);
        sendrecv(out.detach(), next, grad, next);
        early_grads[b] = grad;
      } else {
        send(out.detach(), next);
      }
      inputs[a.micro] = input;
      outputs[a.micro] = out;
    } else {
      at::Tensor out = outputs.at(a.micro);
      if (last()) {
        out.backward();
      } else {
        out.backward(take_or_recv(early_grads, a.micro, next));
      }
      stage.after_backward(a.micro);
      if (!first()) {
        const at::Tensor input_grad = inputs.at(a.micro).grad();
        if (then_forward) {  // send this gradient, get the next forward's input
          const int f = actions[k + 1].micro;
          at::Tensor input = stage.activation_like(f);
          sendrecv(input_grad, prev, input, prev);
          early_inputs[f] = input;
        } else {
          send(input_grad, prev);
        }
      }
      inputs.erase(a.micro);
      outputs.erase(a.micro);
    }
  }
  return loss;
}

double Pipeline::forward_only(int micro, const Stage& stage) {
  double loss = 0;
  for (int i = 0; i < micro; ++i) {
    at::Tensor input;
    if (!first()) {
      input = stage.activation_like(i);
      recv(input, pp_.rank() - 1);
    }
    const at::Tensor out = stage.forward(i, input);
    if (last()) loss += out.item<double>();
    else send(out, pp_.rank() + 1);
  }
  return loss;
}

}  // namespace medgpt::parallel
