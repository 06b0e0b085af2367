// 4-bit NormalFloat (NF4) weights as bitsandbytes stores them for QLoRA: blocks of 64 consecutive
// elements of the row-major weight, each scaled by its absmax and rounded to the nearest of 16
// code values, two indices per byte (element 2j in the high nibble). With double quantization
// (bitsandbytes' compress_statistics) the fp32 absmax vector is itself stored as 8-bit indices into
// the signed dynamic map, blocks of 256, around its mean. Dequantization is x = code[q] * absmax
// in fp32, then cast. The values and rules are in shared/specs/algorithms.md §3.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <vector>

namespace medgpt::model {

class Transformer;

struct Nf4Weight {
  std::vector<std::int64_t> shape;       // of the weight it replaces, e.g. [out, in]
  at::ScalarType dtype = at::kFloat;     // of the weight it replaces (bitsandbytes quant_state.dtype)
  std::int64_t blocksize = 64;
  at::Tensor packed;                     // uint8 [(n+1)/2, 1]
  at::Tensor absmax;                     // fp32 [blocks]; uint8 [blocks] when double-quantized
  bool double_quant = false;
  at::Tensor nested_absmax;              // fp32 [ceil(blocks/256)]
  at::Tensor nested_code;                // fp32 [256], the signed dynamic map
  float offset = 0.0f;                   // mean of the fp32 absmax vector
  static constexpr std::int64_t kNestedBlocksize = 256;

  std::int64_t numel() const;
  // Bytes held by this weight's tensors (packed indices, absmax and the nested statistics).
  std::int64_t bytes() const;
};

// bitsandbytes' NF4 code, index 0..15, exact float32 values.
const std::array<float, 16>& nf4_code_values();
at::Tensor nf4_code();
// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): 256 float32 values, ascending.
at::Tensor dynamic_map();

// Quantizes w (fp32, bf16 or fp16; any shape) as bitsandbytes' quantize_4bit(quant_type="nf4").
Nf4Weight nf4_quantize(const at::Tensor& w, bool double_quant = true, std::int64_t blocksize = 64);
// The per-block absmax in fp32 (dequantized from 8 bits when double-quantized).
at::Tensor nf4_absmax(const Nf4Weight& w);
// The 4-bit indices unpacked, uint8 [numel].
at::Tensor nf4_indices(const Nf4Weight& w);
// The weight, computed in fp32 and cast to `dtype`, in its original shape.
at::Tensor nf4_dequantize(const Nf4Weight& w, at::ScalarType dtype);

// bitsandbytes' blockwise 8-bit quantization with a code (argmin |x/absmax - code|, ties to the
// lower index): {uint8 indices [n], fp32 absmax [blocks]}, and its inverse.
std::pair<at::Tensor, at::Tensor> quantize_blockwise(const at::Tensor& x, const at::Tensor& code, std::int64_t blocksize);
at::Tensor dequantize_blockwise(const at::Tensor& q, const at::Tensor& absmax, const at::Tensor& code, std::int64_t blocksize);

// x @ W^T (+ bias) with W dequantized on the fly in x's dtype. As bitsandbytes' MatMul4Bit, the
// backward pass dequantizes W again rather than keeping the dequantized copy alive; W gets no gradient.
at::Tensor nf4_linear(const at::Tensor& x, const Nf4Weight& w, const at::Tensor& bias = {});

// QLoRA: every Linear of every block (q,k,v,o,gate,up,down) keeps its weight as NF4 only (the
// full-precision tensor is released; Transformer::named_parameters() then omits it). Biases, norms,
// the embedding and the LM head stay as they are. Call after loading, before apply_lora.
// Under tp each rank quantizes its own shard: where a shard's rows (column-parallel) or row
// segments (row-parallel) are whole 64-element blocks, its blocks are the full weight's, so the
// 4-bit values are those of tp 1; double quantization's statistics are then per shard.
void quantize_nf4(Transformer& m, bool double_quant = true);

}  // namespace medgpt::model
