// How tensors of each dtype are stored in medgpt's HDF5 checkpoints: HDF5 has no bf16, so 16-bit
// floats travel as their bit patterns, and each dataset names its dtype in an attribute.
#pragma once

#include <ATen/ATen.h>
#include <hdf5.h>

#include <string>

namespace medgpt::model {

// The HDF5 memory type a tensor of dtype `t` is read and written as.
hid_t h5_type(at::ScalarType t);
// "float32" -> at::kFloat, ...; util::Error naming `where` for an unknown name.
at::ScalarType dtype_named(const std::string& name, const std::string& where);
std::string dtype_name(at::ScalarType t);

}  // namespace medgpt::model
