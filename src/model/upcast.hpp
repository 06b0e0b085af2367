// The dtype of transformers' `.float()` upcasts (RMSNorm, softmax, logits, the loss): float32 for
// bfloat16/float16/float32, float64 kept as it is, so a float64 model is float64 throughout (the
// reference precision of the tests whose claim is equality, e.g. cached vs full recomputation).
#pragma once

#include <ATen/ATen.h>

namespace medgpt::model {

inline at::ScalarType upcast(at::ScalarType t) { return at::promote_types(t, at::kFloat); }

}  // namespace medgpt::model
