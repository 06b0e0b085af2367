#include "model/transformer.hpp"

#include <cmath>
#include <limits>
#include <map>

#include <ATen/CPUGeneratorImpl.h>

#include "parallel/tensor_parallel.hpp"
#include "model/checkpointing.hpp"
#include "model/kv_cache.hpp"
#include "model/lm_loss.hpp"
#include "model/lora.hpp"
#include "model/rms_norm.hpp"
#include "model/rope.hpp"
#include "model/tp_plan.hpp"
#include "util/error.hpp"

namespace medgpt::model {

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "float") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp16" || name == "float16" || name == "half") return at::kHalf;
  util::fail("dtype", "\"" + name + "\" is not a model dtype", "use fp32, bf16 or fp16");
}

StageView StageView::of(const std::vector<int>& layers, int stage) {
  StageView v;
  for (int s = 0; s < stage; ++s) v.first += layers[static_cast<std::size_t>(s)];
  v.count = layers[static_cast<std::size_t>(stage)];
  v.embedding = stage == 0;
  v.head = stage == static_cast<int>(layers.size()) - 1;
  return v;
}

Transformer::Transformer(ModelConfig config, at::ScalarType dtype, at::Device device, parallel::Comm* tp, StageView stage)
    : config_(std::move(config)), dtype_(dtype), tp_(tp && tp->size() > 1 ? tp : nullptr), stage_(stage) {
  const auto& c = config_;
  if (stage_.count < 0) stage_.count = c.num_layers - stage_.first;
  if (stage_.first < 0 || stage_.count < 1 || stage_.first + stage_.count > c.num_layers)
    util::fail("Transformer", "layers [" + std::to_string(stage_.first) + ", " + std::to_string(stage_.first + stage_.count) + ") outside the model's " +
                                  std::to_string(c.num_layers), "internal error");
  const auto opt = at::TensorOptions().dtype(dtype).device(device);
  const std::int64_t t = tp_size();
  if (t > 1) check_tp(c, static_cast<int>(t));
  // Local sizes of the split dimensions (model/tp_plan.hpp): heads, MLP width, vocabulary.
  const std::int64_t q_out = c.q_dim() / t, kv_out = c.num_kv_heads % t == 0 ? c.kv_dim() / t : c.kv_dim();
  const std::int64_t inter = c.intermediate_size / t, vocab = c.vocab_size / t;
  // Each linear layer takes its role from the plan (model/tp_plan.hpp) and keeps the tp communicator.
  auto linear = [&](const char* module, std::int64_t out, std::int64_t in, bool bias) {
    Linear l{at::zeros({out, in}, opt), bias ? at::zeros({out}, opt) : at::Tensor()};
    l.role = linear_role(module, c, static_cast<int>(t));
    l.tp = tp_;
    return l;
  };
  if (stage_.embedding || holds_head_copy()) embed_ = at::zeros({vocab, c.hidden_size}, opt);
  for (std::int64_t l = 0; l < stage_.count; ++l) {
    Block b;
    b.input_norm = at::ones({c.hidden_size}, opt);
    b.post_norm = at::ones({c.hidden_size}, opt);
    b.q = linear("q_proj", q_out, c.hidden_size, c.qkv_bias);
    b.k = linear("k_proj", kv_out, c.hidden_size, c.qkv_bias);
    b.v = linear("v_proj", kv_out, c.hidden_size, c.qkv_bias);
    b.o = linear("o_proj", c.hidden_size, q_out, c.o_bias);
    if (c.qk_norm) {
      b.q_norm = at::ones({c.head_dim}, opt);
      b.k_norm = at::ones({c.head_dim}, opt);
    }
    b.gate = linear("gate_proj", inter, c.hidden_size, c.mlp_bias);
    b.up = linear("up_proj", inter, c.hidden_size, c.mlp_bias);
    b.down = linear("down_proj", c.hidden_size, inter, c.mlp_bias);
    blocks_.push_back(std::move(b));
  }
  if (stage_.head) {
    final_norm_ = at::ones({c.hidden_size}, opt);
    if (has_lm_head()) lm_head_ = at::zeros({vocab, c.hidden_size}, opt);
    if (c.num_labels > 0) score_ = at::zeros({c.num_labels, c.hidden_size}, opt);
  }
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
  if (config.tie_word_embeddings || config.num_labels > 0) given.erase("lm_head.weight");
  if (!given.empty())
    util::fail(where + ": " + given.begin()->first, "is not a parameter of a " + config.model_type + " model",
               "check config.json and the weights");
}

NamedTensors Transformer::named_parameters() const {
  NamedTensors out;
  if (embed_.defined()) out.emplace_back("model.embed_tokens.weight", embed_);
  for (std::size_t l = 0; l < blocks_.size(); ++l) {
    const Block& b = blocks_[l];
    const std::string p = "model.layers." + std::to_string(stage_.first + static_cast<std::int64_t>(l)) + ".";
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
  if (final_norm_.defined()) out.emplace_back("model.norm.weight", final_norm_);
  if (lm_head_.defined()) out.emplace_back("lm_head.weight", lm_head_);
  if (score_.defined()) out.emplace_back("score.weight", score_);
  return out;
}

int Transformer::split_dim(const std::string& name) const { return tp_split_dim(name, config_, tp_size()); }

const at::Tensor& Transformer::lm_head() const {
  if (config_.num_labels > 0)
    util::fail("model", "this is a sequence classifier (reward model): it scores sequences and has no LM head",
               "generate with a causal LM; score with `medgpt score`");
  return tied() ? embed_ : lm_head_;
}

std::int64_t Transformer::vocab_start() const { return config_.vocab_size / tp_size() * tp_rank(); }

void Transformer::load(const NamedTensors& weights, const std::string& where) {
  std::map<std::string, const at::Tensor*> given;
  for (const auto& [name, t] : weights) given[name] = &t;
  at::NoGradGuard no_grad;
  for (auto& [name, param] : named_parameters()) {
    auto it = given.find(name);
    if (it == given.end()) util::fail(where + ": " + name, "missing from the weights", "the checkpoint does not match config.json");
    const at::Tensor& src = *it->second;
    const int dim = split_dim(name);
    std::vector<std::int64_t> full = param.sizes().vec();
    if (dim >= 0) full[static_cast<std::size_t>(dim)] *= tp_size();
    if (src.sizes() != at::IntArrayRef(full))
      util::fail(where + ": " + name,
                 "shape " + c10::str(src.sizes()) + " does not match " + c10::str(at::IntArrayRef(full)) + " from config.json",
                 "use the config.json that came with these weights");
    param.copy_(tp_shard(src, dim, tp_rank(), tp_size()));
    given.erase(it);
  }
  given.erase("lm_head.weight");  // tied models: transformers re-ties and ignores it; classifiers have none
  if (given.empty()) return;
  // Another pipeline stage's tensors are expected; anything else is not this model's.
  const Transformer all(config_, at::kFloat, at::kMeta);
  for (const auto& [name, p] : all.named_parameters()) given.erase(name);
  for (const auto& [name, t] : given)
    if (name.find("rotary_emb") == std::string::npos)
      util::fail(where + ": " + name, "is not a parameter of a " + config_.model_type + " model", "check config.json and the weights");
}

Transformer Transformer::from_pretrained(const std::string& dir, at::ScalarType dtype, parallel::Comm* tp) {
  Transformer t(ModelConfig::load(dir), dtype, at::kCPU, tp);
  t.load(read_safetensors_dir(dir), dir);
  return t;
}

void Transformer::init_random(std::uint64_t seed) {
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::map<std::string, at::Tensor> mine;
  for (auto& [name, p] : named_parameters()) mine.emplace(name, p);
  // The whole model's parameters in order, drawn whole in fp32 (another stage's too, to keep the
  // generator's sequence) and then cut and rounded: every tp and pp layout and dtype starts from
  // the same model.
  const Transformer all(config_, at::kFloat, at::kMeta);
  for (const auto& [name, shape] : all.named_parameters()) {
    const auto it = mine.find(name);
    const bool norm = name.find("norm") != std::string::npos;
    const bool bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (norm || bias) {
      if (it != mine.end()) it->second.fill_(norm ? 1.0 : 0.0);
      continue;
    }
    at::Tensor w = at::empty(shape.sizes(), at::kFloat).normal_(0.0, config_.initializer_range, gen);
    if (it == mine.end()) continue;
    at::Tensor& p = it->second;
    const int dim = split_dim(name);
    if (dim >= 0) w = w.narrow(dim, p.size(dim) * tp_rank(), p.size(dim));
    p.copy_(w);
  }
}

void Transformer::set_compute_dtype(at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  for (auto& [name, p] : named_parameters())
    if (p.scalar_type() != dtype) p.set_data(p.to(dtype));
  dtype_ = dtype;
}

void Transformer::resize_vocab(std::int64_t vocab_size) {
  const std::int64_t old = config_.vocab_size, t = tp_size();
  if (vocab_size == old) return;
  if (vocab_size <= 0 || vocab_size % t != 0)
    util::fail("--model.resize_vocab", std::to_string(vocab_size) + " rows cannot be split over tp " + std::to_string(t),
               "pick a multiple of the tensor-parallel size (e.g. round up to a multiple of 64)");
  at::NoGradGuard no_grad;
  auto resized = [&](const at::Tensor& w) {
    // Mean of all rows, across tp shards (vocab-parallel: each rank holds V/tp rows).
    at::Tensor sum = w.to(at::kFloat).sum(0);
    if (tp_) tp_->allreduce(sum, parallel::ReduceOp::kSum);
    const at::Tensor mean = (sum / static_cast<double>(old)).to(w.scalar_type());
    // Global rows [start, start + local) of the new table, filled from the old rows that exist.
    const std::int64_t local = vocab_size / t, start = local * tp_rank(), old_local = old / t, old_start = old_local * tp_rank();
    at::Tensor out = mean.unsqueeze(0).repeat({local, 1});
    const std::int64_t lo = std::max(start, old_start), hi = std::min(start + local, old_start + old_local);
    if (hi > lo) out.narrow(0, lo - start, hi - lo).copy_(w.narrow(0, lo - old_start, hi - lo));
    if (t > 1 && (start < old_start || start + local > old_start + old_local) && hi - lo < std::min(local, old - start))
      util::fail("--model.resize_vocab", "resizing a tensor-parallel model moves rows between ranks",
                 "resize the Hugging Face model with tp 1, then split it (medgpt import --tp)");
    return out.requires_grad_(w.requires_grad());
  };
  if (embed_.defined()) embed_ = resized(embed_);
  if (lm_head_.defined()) lm_head_ = resized(lm_head_);
  config_.vocab_size = vocab_size;
  config_.raw["vocab_size"] = vocab_size;
}

void Transformer::set_requires_grad(bool on) {
  for (auto& [name, p] : named_parameters()) p.requires_grad_(on);
}

at::Tensor Transformer::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  // fp32 statistics, cast back to the input dtype before the weight (as transformers does).
  return model::rms_norm(x, weight, config_.rms_norm_eps);
}

at::Tensor Transformer::attention(const Block& b, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const MaskSpec& mask, KvCache* cache, std::size_t layer) const {
  const auto& c = config_;
  const std::int64_t B = x.size(0), T = x.size(1), D = c.head_dim;
  // Under tp this rank computes heads [tp_rank * nh, (tp_rank + 1) * nh) (column-parallel q/k/v).
  const std::int64_t nh = c.num_heads / tp_size();
  const bool kv_split = c.num_kv_heads % tp_size() == 0;
  const std::int64_t nkv = kv_split ? c.num_kv_heads / tp_size() : c.num_kv_heads;
  // q/k norms are replicated and serve this rank's heads only: their gradients are summed over tp.
  auto shared = [&](const at::Tensor& w) { return tp_ && w.defined() ? parallel::copy_to_tp(w, *tp_) : w; };
  at::Tensor q = b.q(x).view({B, T, nh, D});
  at::Tensor k = b.k(x).view({B, T, nkv, D});
  at::Tensor v = b.v(x).view({B, T, nkv, D});
  if (c.qk_norm) {  // Qwen3: per-head RMSNorm before rotary
    q = rms_norm(q, shared(b.q_norm));
    k = rms_norm(k, shared(b.k_norm));
  }
  q = apply_rope(q.transpose(1, 2), cos, sin);
  k = apply_rope(k.transpose(1, 2), cos, sin);
  v = v.transpose(1, 2);
  if (cache) std::tie(k, v) = cache->append(layer, k, v);  // keys/values of every position so far
  const std::int64_t rep = c.num_heads / c.num_kv_heads;
  if (rep > 1) {  // GQA: kv head j serves query heads j*rep .. j*rep+rep-1
    k = k.repeat_interleave(rep, 1);
    v = v.repeat_interleave(rep, 1);
  }
  if (!kv_split) {  // fewer kv heads than tp ranks: all are computed here, keep this rank's
    k = k.narrow(1, tp_rank() * nh, nh);
    v = v.narrow(1, tp_rank() * nh, nh);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor out;
  if (!mask.additive.defined()) {
    out = chunked_attention(q, k, v, mask.parts, scale);
  } else {
    const at::Tensor scores = at::matmul(q, k.transpose(2, 3)) * scale + mask.additive;
    out = at::matmul(at::softmax(scores, -1, upcast(q.scalar_type())).to(q.scalar_type()), v);
  }
  return b.o(out.transpose(1, 2).reshape({B, T, nh * D}));
}

namespace {

// The eager path's additive mask [B, 1, T, past + T]: causal, minus padded keys, minus keys of
// other packed samples, at torch.finfo(dtype).min as transformers fills masked scores.
at::Tensor additive_mask(const AttentionMask& m, std::int64_t B, std::int64_t T, at::ScalarType dtype) {
  const std::int64_t keys = m.past + T;
  at::Tensor allowed = at::ones({T, keys}, at::kBool).tril(m.past).view({1, 1, T, keys});
  if (m.key_mask.defined()) allowed = allowed.logical_and(m.key_mask.to(at::kBool).view({B, 1, 1, keys}));
  if (m.segment_ids.defined()) allowed = allowed.logical_and(m.segment_ids.view({B, 1, T, 1}).eq(m.segment_ids.view({B, 1, 1, T})));
  const double neg = dtype == at::kHalf       ? -65504.0
                     : dtype == at::kBFloat16 ? -3.3895313892515355e38
                                              : static_cast<double>(std::numeric_limits<float>::lowest());
  return at::zeros(allowed.sizes(), at::TensorOptions().dtype(dtype)).masked_fill(allowed.logical_not(), neg);
}

}  // namespace

at::Tensor add_neftune_noise(const at::Tensor& emb, double alpha) {
  const double mag = alpha / std::sqrt(static_cast<double>(emb.size(-2) * emb.size(-1)));
  return emb + at::empty_like(emb).uniform_(-mag, mag);
}

at::Tensor Transformer::hidden(const at::Tensor& ids, const ForwardInputs& in) const {
  if (!whole()) util::fail("Transformer::hidden", "this rank holds one pipeline stage", "internal error: use stage_forward");
  return stage_forward(ids, in);
}

at::Tensor Transformer::stage_forward(const at::Tensor& input, const ForwardInputs& in) const {
  const std::int64_t B = input.size(0), T = input.size(1);
  const std::int64_t past = in.cache ? in.cache->length : 0, keys = past + T;
  if (in.cache && in.segment_ids.defined()) util::fail("Transformer", "packed samples cannot use a KV cache", "internal error");
  at::Tensor positions = in.positions.defined() ? in.positions : at::arange(past, keys, at::kLong).unsqueeze(0).expand({B, T});
  const std::int64_t longest = positions.numel() ? positions.max().item<std::int64_t>() + 1 : 0;
  const at::Tensor inv_freq =
      config_.rope_scaling.type == "dynamic" && longest > config_.max_position_embeddings ? rope_inv_freq(config_, longest) : inv_freq_;
  auto [cos, sin] = rope_tables(inv_freq, positions, dtype_);

  // The attention mask's parts, and for the eager path the additive tensor they make.
  MaskSpec mask;
  mask.parts = {past, in.attention_mask, in.segment_ids};
  if (!chunked_attention_) mask.additive = additive_mask(mask.parts, B, T, dtype_);

  at::Tensor x = input;
  if (stage_.embedding) {
    if (hooks_) hooks_->before_forward(0);
    // A sparse gradient only where the tied head's dense one lands on the same tensor (one stage).
    const bool sparse = in.sparse_embedding_grad && tied() && stage_.head;
    x = tp_ ? parallel::vocab_parallel_embedding(input, embed_, vocab_start(), *tp_)
            : at::embedding(embed_, input, /*padding_idx=*/-1, /*scale_grad_by_freq=*/false, sparse);
    if (in.neftune_alpha > 0) x = add_neftune_noise(x, in.neftune_alpha);
    if (hooks_) hooks_->after_forward(0);
  }
  const bool recompute = checkpointing_ && at::GradMode::is_enabled();
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    const int unit = static_cast<int>(i) + 1;
    if (hooks_) {
      x = unit_boundary(x, hooks_, unit);
      hooks_->before_forward(unit);
    }
    x = recompute ? checkpointed_block(*this, i, x, cos, sin, mask) : block(i, x, cos, sin, mask, in.cache);
    if (hooks_) hooks_->after_forward(unit);
  }
  if (in.cache) in.cache->length += T;
  if (!stage_.head) return x;
  if (hooks_) {  // the head stays gathered for the loss and its backward (model/unit_hooks.hpp)
    x = unit_boundary(x, hooks_, head_unit());
    hooks_->before_forward(head_unit());
  }
  return rms_norm(x, final_norm_);
}

int Transformer::unit_of(const std::string& name) const {
  const std::string layers = "model.layers.";
  if (const std::size_t at = name.find(layers); at != std::string::npos) {
    const std::int64_t layer = std::stoll(name.substr(at + layers.size()));
    const std::int64_t i = layer - stage_.first;
    return i >= 0 && i < static_cast<std::int64_t>(blocks_.size()) ? static_cast<int>(i) + 1 : -1;
  }
  if (name.find("embed_tokens.") != std::string::npos) return stage_.embedding ? 0 : stage_.head && tied_head() ? head_unit() : -1;
  if (name.find("model.norm.") != std::string::npos || name.find("lm_head.") != std::string::npos || name.find("score.") != std::string::npos)
    return stage_.head ? head_unit() : -1;
  return -1;
}

at::Tensor Transformer::block(std::size_t i, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                              const MaskSpec& mask, KvCache* cache) const {
  const Block& b = blocks_[i];
  // The column-parallel layers' input enters the tp region once for q/k/v and once for gate/up.
  auto enter = [&](const at::Tensor& t) { return tp_ ? parallel::copy_to_tp(t, *tp_) : t; };
  at::Tensor h = x + attention(b, enter(rms_norm(x, b.input_norm)), cos, sin, mask, cache, i);
  at::Tensor n = enter(rms_norm(h, b.post_norm));
  return h + b.down(at::silu(b.gate(n)) * b.up(n));
}

NamedTensors Transformer::block_parameters(std::size_t i) const {
  // What a recomputed block differentiates: its trainable tensors, LoRA adapters included (a
  // frozen base under LoRA/QLoRA contributes none).
  NamedTensors out;
  const std::string prefix = "model.layers." + std::to_string(stage_.first + static_cast<std::int64_t>(i)) + ".";
  for (auto& nt : named_parameters())
    if (nt.first.compare(0, prefix.size(), prefix) == 0 && nt.second.requires_grad()) out.push_back(nt);
  for (const auto& [name, t] : lora_parameters(*this))
    if (name.find(prefix) != std::string::npos && t.requires_grad()) out.emplace_back(name, t);
  return out;
}

at::Tensor Transformer::logits(const at::Tensor& ids, const ForwardInputs& in) const {
  at::Tensor h = hidden(ids, in);
  if (!tp_) return at::linear(h, lm_head());
  return parallel::gather_from_tp(at::linear(parallel::copy_to_tp(h, *tp_), lm_head()), *tp_);
}

at::Tensor Transformer::last_logits(const at::Tensor& ids, const ForwardInputs& in) const {
  at::Tensor h = hidden(ids, in).select(1, ids.size(1) - 1);
  const at::ScalarType f = upcast(h.scalar_type());
  if (!tp_) return at::linear(h, lm_head()).to(f);
  return parallel::gather_from_tp(at::linear(parallel::copy_to_tp(h, *tp_), lm_head()), *tp_).to(f);
}

at::Tensor Transformer::loss(const at::Tensor& ids, const at::Tensor& labels, const ForwardInputs& in, double normalizer) const {
  ForwardInputs with_head = in;
  with_head.sparse_embedding_grad = true;  // the tied head's gradient comes from lm_loss below
  return loss_from_hidden(hidden(ids, with_head), labels, normalizer);
}

at::Tensor Transformer::loss_from_hidden(const at::Tensor& hidden, const at::Tensor& labels, double normalizer) const {
  at::Tensor h = hidden.reshape({-1, hidden.size(-1)});
  if (tp_) h = parallel::copy_to_tp(h, *tp_);
  const at::Tensor y = shift_labels(labels).reshape({-1});
  if (normalizer <= 0) normalizer = std::max<double>(1.0, static_cast<double>(y.ne(kIgnoreIndex).sum().item<std::int64_t>()));
  return lm_loss(h, lm_head(), y, normalizer, 1024, tp_, vocab_start());
}

}  // namespace medgpt::model
