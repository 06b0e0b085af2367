#include "model/h5_dtype.hpp"

#include <map>

#include "util/error.hpp"

namespace medgpt::model {

// How a dtype is stored: HDF5 has no bf16, so 16-bit floats travel as their bit patterns.
hid_t h5_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return H5T_NATIVE_FLOAT;
    case at::kDouble: return H5T_NATIVE_DOUBLE;
    case at::kBFloat16:
    case at::kHalf:
    case at::kShort: return H5T_NATIVE_INT16;
    case at::kLong: return H5T_NATIVE_INT64;
    case at::kInt: return H5T_NATIVE_INT32;
    case at::kByte:
    case at::kBool: return H5T_NATIVE_UINT8;
    case at::kChar: return H5T_NATIVE_INT8;
    default: util::fail("checkpoint", std::string("dtype ") + c10::toString(t) + " cannot be stored", "convert the tensor");
  }
}

at::ScalarType dtype_named(const std::string& n, const std::string& where) {
  static const std::map<std::string, at::ScalarType> m = {
      {"float32", at::kFloat}, {"float64", at::kDouble}, {"bfloat16", at::kBFloat16}, {"float16", at::kHalf},
      {"int16", at::kShort},   {"int64", at::kLong},     {"int32", at::kInt},         {"uint8", at::kByte},
      {"bool", at::kBool},     {"int8", at::kChar}};
  auto it = m.find(n);
  if (it == m.end()) util::fail(where, "unknown dtype \"" + n + "\"", "the checkpoint is damaged or newer than this medgpt");
  return it->second;
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kShort: return "int16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    case at::kChar: return "int8";
    default: return c10::toString(t);
  }
}

}  // namespace medgpt::model
