// How each Hugging Face parameter is split over tensor-parallel ranks (Megatron's layout):
// q/k/v/gate/up are column-parallel (split the output rows), o/down row-parallel (split the
// input columns), embedding and LM head vocab-parallel (split the rows), norms replicated.
// k/v are replicated when there are fewer kv heads than tp ranks.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "model/config.hpp"
#include "model/linear.hpp"

namespace medgpt::model {

// The role of a block's linear layer ("q_proj", ..., "down_proj") under tp; kReplicated at tp 1.
ParallelRole linear_role(const std::string& module, const ModelConfig& c, int tp);

// The dimension the parameter `name` is split along over tp ranks, or -1 when every rank holds it
// whole: the linear layers' from their roles, embedding and LM head by vocabulary rows.
int tp_split_dim(const std::string& name, const ModelConfig& c, int tp);

// Refuses (util::Error) a tp size the model's shapes cannot split evenly.
void check_tp(const ModelConfig& c, int tp);

// Rank `rank`'s part of `full` (a contiguous copy), or `full` itself when dim is -1.
at::Tensor tp_shard(const at::Tensor& full, int dim, int rank, int tp);

}  // namespace medgpt::model
