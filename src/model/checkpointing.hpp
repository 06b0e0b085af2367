// Activation checkpointing of one decoder block (torch.utils.checkpoint for LibTorch): the forward
// pass runs without recording a graph and keeps only the block's input; the backward pass runs the
// block again with autograd on and differentiates that.
#pragma once

#include <ATen/ATen.h>

#include "model/transformer.hpp"

namespace medgpt::model {

at::Tensor checkpointed_block(const Transformer& m, std::size_t i, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                              const MaskSpec& mask);

}  // namespace medgpt::model
