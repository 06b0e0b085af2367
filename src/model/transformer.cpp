#include "model/transformer.hpp"

#include <cmath>
#include <limits>
#include <map>

#include <ATen/CPUGeneratorImpl.h>

#include "model/rope.hpp"
#include "util/error.hpp"

namespace medgpt::model {

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "float") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp16" || name == "float16" || name == "half") return at::kHalf;
  util::fail("dtype", "\"" + name + "\" is not a model dtype", "use fp32, bf16 or fp16");
}

Transformer::Transformer(ModelConfig config, at::ScalarType dtype, at::Device device)
    : config_(std::move(config)), dtype_(dtype) {
  const auto& c = config_;
  const auto opt = at::TensorOptions().dtype(dtype).device(device);
  auto linear = [&](std::int64_t out, std::int64_t in, bool bias) {
    return Linear{at::zeros({out, in}, opt), bias ? at::zeros({out}, opt) : at::Tensor()};
  };
  embed_ = at::zeros({c.vocab_size, c.hidden_size}, opt);
  for (std::int64_t l = 0; l < c.num_layers; ++l) {
    Block b;
    b.input_norm = at::ones({c.hidden_size}, opt);
    b.post_norm = at::ones({c.hidden_size}, opt);
    b.q = linear(c.q_dim(), c.hidden_size, c.qkv_bias);
    b.k = linear(c.kv_dim(), c.hidden_size, c.qkv_bias);
    b.v = linear(c.kv_dim(), c.hidden_size, c.qkv_bias);
    b.o = linear(c.hidden_size, c.q_dim(), c.o_bias);
    if (c.qk_norm) {
      b.q_norm = at::ones({c.head_dim}, opt);
      b.k_norm = at::ones({c.head_dim}, opt);
    }
    b.gate = linear(c.intermediate_size, c.hidden_size, c.mlp_bias);
    b.up = linear(c.intermediate_size, c.hidden_size, c.mlp_bias);
    b.down = linear(c.hidden_size, c.intermediate_size, c.mlp_bias);
    blocks_.push_back(std::move(b));
  }
  final_norm_ = at::ones({c.hidden_size}, opt);
  if (!c.tie_word_embeddings) lm_head_ = at::zeros({c.vocab_size, c.hidden_size}, opt);
  inv_freq_ = rope_inv_freq(c);
}

void validate_weights(const ModelConfig& config, const NamedTensors& weights, const std::string& where) {
  const Transformer shapes(config, at::kFloat, at::kMeta);
  std::map<std::string, at::IntArrayRef> given;
  for (const auto& [name, t] : weights) given.emplace(name, t.sizes());
  for (const auto& [name, p] : shapes.named_parameters()) {
    auto it = given.find(name);
    if (it == given.end()) util::fail(where + ": " + name, "missing from the weights", "the checkpoint does not match config.json");
    if (it->second != p.sizes())
      util::fail(where + ": " + name, "shape " + c10::str(it->second) + " does not match " + c10::str(p.sizes()) + " from config.json",
                 "use the config.json that came with these weights");
    given.erase(it);
  }
  if (config.tie_word_embeddings) given.erase("lm_head.weight");
  if (!given.empty())
    util::fail(where + ": " + given.begin()->first, "is not a parameter of a " + config.model_type + " model",
               "check config.json and the weights");
}

NamedTensors Transformer::named_parameters() const {
  NamedTensors out;
  out.emplace_back("model.embed_tokens.weight", embed_);
  for (std::size_t l = 0; l < blocks_.size(); ++l) {
    const Block& b = blocks_[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto lin = [&](const std::string& name, const Linear& x) {
      if (x.weight.defined()) out.emplace_back(p + name + ".weight", x.weight);  // undefined when NF4 (QLoRA)
      if (x.bias.defined()) out.emplace_back(p + name + ".bias", x.bias);
    };
    out.emplace_back(p + "input_layernorm.weight", b.input_norm);
    lin("self_attn.q_proj", b.q);
    lin("self_attn.k_proj", b.k);
    lin("self_attn.v_proj", b.v);
    lin("self_attn.o_proj", b.o);
    if (b.q_norm.defined()) {
      out.emplace_back(p + "self_attn.q_norm.weight", b.q_norm);
      out.emplace_back(p + "self_attn.k_norm.weight", b.k_norm);
    }
    out.emplace_back(p + "post_attention_layernorm.weight", b.post_norm);
    lin("mlp.gate_proj", b.gate);
    lin("mlp.up_proj", b.up);
    lin("mlp.down_proj", b.down);
  }
  out.emplace_back("model.norm.weight", final_norm_);
  if (!tied()) out.emplace_back("lm_head.weight", lm_head_);
  return out;
}

void Transformer::load(const NamedTensors& weights, const std::string& where) {
  std::map<std::string, const at::Tensor*> given;
  for (const auto& [name, t] : weights) given[name] = &t;
  at::NoGradGuard no_grad;
  for (auto& [name, param] : named_parameters()) {
    auto it = given.find(name);
    if (it == given.end()) util::fail(where + ": " + name, "missing from the weights", "the checkpoint does not match config.json");
    const at::Tensor& src = *it->second;
    if (src.sizes() != param.sizes())
      util::fail(where + ": " + name,
                 "shape " + c10::str(src.sizes()) + " does not match " + c10::str(param.sizes()) + " from config.json",
                 "use the config.json that came with these weights");
    param.copy_(src);
    given.erase(it);
  }
  given.erase("lm_head.weight");  // tied models: transformers re-ties and ignores it
  for (const auto& [name, t] : given)
    if (name.find("rotary_emb") == std::string::npos)
      util::fail(where + ": " + name, "is not a parameter of a " + config_.model_type + " model", "check config.json and the weights");
}

Transformer Transformer::from_pretrained(const std::string& dir, at::ScalarType dtype) {
  Transformer t(ModelConfig::load(dir), dtype);
  t.load(read_safetensors_dir(dir), dir);
  return t;
}

void Transformer::init_random(std::uint64_t seed) {
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, p] : named_parameters()) {
    const bool norm = name.find("norm") != std::string::npos;
    if (norm) p.fill_(1.0);
    else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) p.zero_();
    else p.normal_(0.0, config_.initializer_range, gen);
  }
}

void Transformer::set_requires_grad(bool on) {
  for (auto& [name, p] : named_parameters()) p.requires_grad_(on);
}

at::Tensor Transformer::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  // fp32 statistics, cast back to the input dtype before the weight (as transformers does).
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + config_.rms_norm_eps);
  return weight * y.to(x.scalar_type());
}

at::Tensor Transformer::attention(const Block& b, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& mask) const {
  const auto& c = config_;
  const std::int64_t B = x.size(0), T = x.size(1), D = c.head_dim;
  at::Tensor q = b.q(x).view({B, T, c.num_heads, D});
  at::Tensor k = b.k(x).view({B, T, c.num_kv_heads, D});
  at::Tensor v = b.v(x).view({B, T, c.num_kv_heads, D});
  if (c.qk_norm) {  // Qwen3: per-head RMSNorm before rotary
    q = rms_norm(q, b.q_norm);
    k = rms_norm(k, b.k_norm);
  }
  q = apply_rope(q.transpose(1, 2), cos, sin);
  k = apply_rope(k.transpose(1, 2), cos, sin);
  v = v.transpose(1, 2);
  const std::int64_t rep = c.num_heads / c.num_kv_heads;
  if (rep > 1) {  // GQA: kv head j serves query heads j*rep .. j*rep+rep-1
    k = k.repeat_interleave(rep, 1);
    v = v.repeat_interleave(rep, 1);
  }
  at::Tensor scores = at::matmul(q, k.transpose(2, 3)) * (1.0 / std::sqrt(static_cast<double>(D)));
  scores = scores + mask;
  at::Tensor p = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  at::Tensor out = at::matmul(p, v).transpose(1, 2).reshape({B, T, c.q_dim()});
  return b.o(out);
}

at::Tensor Transformer::hidden(const at::Tensor& ids, const ForwardInputs& in) const {
  const std::int64_t B = ids.size(0), T = ids.size(1);
  at::Tensor positions = in.positions.defined() ? in.positions : at::arange(T, at::kLong).unsqueeze(0).expand({B, T});
  auto [cos, sin] = rope_tables(inv_freq_, positions, dtype_);

  // Additive mask [B, 1, T, T]: causal, minus padded keys, minus keys of other packed samples.
  at::Tensor allowed = at::ones({T, T}, at::kBool).tril().view({1, 1, T, T});
  if (in.attention_mask.defined()) allowed = allowed.logical_and(in.attention_mask.to(at::kBool).view({B, 1, 1, T}));
  if (in.segment_ids.defined())
    allowed = allowed.logical_and(in.segment_ids.view({B, 1, T, 1}).eq(in.segment_ids.view({B, 1, 1, T})));
  // torch.finfo(dtype).min, as transformers fills masked scores.
  const double neg = dtype_ == at::kHalf       ? -65504.0
                     : dtype_ == at::kBFloat16 ? -3.3895313892515355e38
                                               : static_cast<double>(std::numeric_limits<float>::lowest());
  at::Tensor mask = at::zeros(allowed.sizes(), at::TensorOptions().dtype(dtype_)).masked_fill(allowed.logical_not(), neg);

  at::Tensor x = at::embedding(embed_, ids);
  for (const Block& b : blocks_) {
    at::Tensor h = x + attention(b, rms_norm(x, b.input_norm), cos, sin, mask);
    at::Tensor n = rms_norm(h, b.post_norm);
    x = h + b.down(at::silu(b.gate(n)) * b.up(n));
  }
  return rms_norm(x, final_norm_);
}

at::Tensor Transformer::logits(const at::Tensor& ids, const ForwardInputs& in) const {
  return at::linear(hidden(ids, in), lm_head());
}

}  // namespace medgpt::model
