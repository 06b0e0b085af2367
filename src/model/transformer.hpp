// The decoder-only transformer of Llama / Qwen2 / Qwen3, parameter for parameter as Hugging Face
// defines it (names, shapes, math): embedding, pre-norm blocks of GQA attention with rotary
// positions and a SwiGLU MLP, a final RMSNorm, and the LM head (tied to the embedding or not).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parallel/comm.hpp"
#include "model/chunked_attention.hpp"
#include "model/config.hpp"
#include "model/linear.hpp"
#include "model/safetensors.hpp"
#include "model/unit_hooks.hpp"

namespace medgpt::model {

struct KvCache;  // model/kv_cache.hpp

struct Block {
  at::Tensor input_norm, post_norm;  // [H]
  Linear q, k, v, o;
  at::Tensor q_norm, k_norm;  // [head_dim], Qwen3 only
  Linear gate, up, down;
};

// Optional inputs of a forward pass over a batch [B, T].
struct ForwardInputs {
  at::Tensor positions;       // [B, T] int64; default 0..T-1
  at::Tensor attention_mask;  // [B, T] 1 = real token, 0 = padding; default all real
  at::Tensor segment_ids;     // [B, T] packed samples: attention stays inside equal ids
  // NEFTune (training only): uniform noise of magnitude alpha / sqrt(T * hidden) on the embeddings.
  double neftune_alpha = 0;
  // Generation: the keys/values of the positions before `ids` are read from (and those of `ids`
  // appended to) the cache; attention_mask then covers past and new positions [B, past + T].
  KvCache* cache = nullptr;
  // The embedding's gradient as its looked-up rows only (sparse). Only when a tied LM head gets a
  // dense gradient in the same backward pass (loss() and align/sequence_logps set it): autograd
  // then adds the rows into that gradient in place, instead of zero-filling and adding a [V, H]
  // one. Alone, the sparse gradient would become the weight's .grad. Ignored under tp.
  bool sparse_embedding_grad = false;
};

// A forward pass's attention mask: the eager path's additive [B, 1, T, keys] tensor (causal,
// padded keys and other packed samples at the dtype's lowest value), or, with chunked attention,
// what it is made of, never materialised ([T, keys] per row is what long sequences cannot afford).
struct MaskSpec {
  at::Tensor additive;  // undefined with chunked attention
  AttentionMask parts;
};

// The part of the model one pipeline stage holds (Megatron's pre_process / post_process): layers
// [first, first + count), the embedding on the first stage, the final norm and the head on the last.
// A tied head on the last stage is its own copy of the embedding, kept equal to the first stage's
// by summing the two gradients (parallel::Grid::embedding()).
struct StageView {
  std::int64_t first = 0, count = -1;  // count -1: every layer
  bool embedding = true, head = true;
  // Stage `stage` of a pipeline whose stages hold `layers[s]` layers each.
  static StageView of(const std::vector<int>& layers, int stage);
};

class Transformer {
 public:
  // Parameters allocated (zeros) in `dtype`; fill them with load() or init_random(). On the meta
  // device nothing is allocated (shapes only). With a tp communicator of size > 1 this rank holds
  // its tensor-parallel shard of every split parameter (model/tp_plan.hpp); with a stage view, only
  // that pipeline stage's parameters.
  Transformer(ModelConfig config, at::ScalarType dtype, at::Device device = at::kCPU, parallel::Comm* tp = nullptr, StageView stage = {});
  // A Hugging Face folder: config.json + safetensors weights, cast to `dtype`.
  static Transformer from_pretrained(const std::string& dir, at::ScalarType dtype, parallel::Comm* tp = nullptr);

  // Copies weights in by Hugging Face name (full tensors; a tp rank keeps its shard, a pipeline
  // stage its layers); every parameter must be present with its exact shape (util::Error names the
  // tensor). A tied model ignores a stored lm_head.weight.
  void load(const NamedTensors& weights, const std::string& where);
  // transformers' init: normal(0, initializer_range) for linear/embedding weights, zero biases,
  // unit norms. Seeded; drawn in the whole model's order, so every tp and pp layout starts alike.
  void init_random(std::uint64_t seed);

  // Parameters by Hugging Face name (lm_head.weight omitted when tied), in a fixed order; under
  // tensor parallelism, this rank's shards.
  NamedTensors named_parameters() const;
  // The split dimension of each parameter under tp (-1: replicated), in named_parameters() order.
  int split_dim(const std::string& name) const;
  void set_requires_grad(bool on);
  // Grows (or shrinks) the vocabulary to `vocab_size` rows after a tokenizer extension: new
  // embedding and LM-head rows start at the mean of the existing rows (MedicalGPT's approach),
  // existing rows are unchanged; config().vocab_size follows. Under tp the new size must divide.
  void resize_vocab(std::int64_t vocab_size);
  // Rounds every parameter (frozen ones too; NF4 weights and LoRA adapters stay as they are) to
  // `dtype` in place (the same tensors, new storage) and computes in it from then on. bf16
  // training builds its fp32 master copy (train::FlatParams) from the fp32 model first.
  void set_compute_dtype(at::ScalarType dtype);
  // Activation checkpointing per layer: a block keeps only its input during the forward pass and
  // is recomputed in the backward pass (less memory, one more block forward).
  void set_gradient_checkpointing(bool on) { checkpointing_ = on; }
  // Attention in query x key blocks with an online softmax (model/chunked_attention.hpp): memory
  // linear in the sequence length instead of quadratic; the same outputs and gradients.
  void set_chunked_attention(bool on) { chunked_attention_ = on; }
  // ZeRO-2/3: called around each unit of stage_forward (model/unit_hooks.hpp); null: none.
  void set_unit_hooks(UnitHooks* hooks) { hooks_ = hooks; }
  // The unit a parameter (a model or LoRA name) belongs to, -1 for none of this stage's.
  int unit_of(const std::string& name) const;
  int head_unit() const { return static_cast<int>(blocks_.size()) + 1; }

  // Final hidden states [B, T, H] (a whole model: one stage).
  at::Tensor hidden(const at::Tensor& ids, const ForwardInputs& in = {}) const;
  // This stage's layers: `input` is ids [B, T] on the first stage, else the previous stage's
  // output [B, T, H]; returns [B, T, H], after the final norm on the last stage. `in` describes the
  // whole batch (positions, masks) on every stage.
  at::Tensor stage_forward(const at::Tensor& input, const ForwardInputs& in = {}) const;
  // Logits [B, T, V] (in the model dtype; gathered over tp).
  at::Tensor logits(const at::Tensor& ids, const ForwardInputs& in = {}) const;
  // Logits of the last position only [B, V] in float32 (generation).
  at::Tensor last_logits(const at::Tensor& ids, const ForwardInputs& in = {}) const;
  // Mean next-token loss over labels [B, T] (-100 ignored; not yet shifted), normalised by
  // `normalizer` (default: this batch's label count). Vocab-parallel under tp.
  at::Tensor loss(const at::Tensor& ids, const at::Tensor& labels, const ForwardInputs& in = {}, double normalizer = 0) const;
  // The same from the final hidden states [B, T, H] (the last pipeline stage).
  at::Tensor loss_from_hidden(const at::Tensor& hidden, const at::Tensor& labels, double normalizer = 0) const;
  const at::Tensor& lm_head() const;
  // A sequence classifier's head [num_labels, H] (config().num_labels > 0).
  const at::Tensor& score_head() const { return score_; }
  parallel::Comm* tp() const { return tp_; }
  // First vocabulary row of this rank's embedding / LM-head shard.
  std::int64_t vocab_start() const;
  bool tied() const { return config_.tie_word_embeddings; }
  bool has_lm_head() const { return !tied() && config_.num_labels == 0; }
  // The LM head is the embedding (a classifier's score head is not).
  bool tied_head() const { return tied() && config_.num_labels == 0; }
  const StageView& stage() const { return stage_; }
  bool whole() const { return stage_.embedding && stage_.head && stage_.count == config_.num_layers; }
  // The last stage's copy of a tied embedding (the head; pipeline parallelism only).
  bool holds_head_copy() const { return stage_.head && !stage_.embedding && tied_head(); }

  // The decoder layers, for the code that adapts their Linear layers (LoRA, NF4 quantization).
  std::vector<Block>& blocks() { return blocks_; }
  const std::vector<Block>& blocks() const { return blocks_; }

  const ModelConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }

 private:
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;
  at::Tensor attention(const Block& b, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                       const MaskSpec& mask, KvCache* cache, std::size_t layer) const;
 public:
  // One decoder block, by index within this stage (for activation checkpointing's recomputation).
  at::Tensor block(std::size_t i, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const MaskSpec& mask,
                   KvCache* cache = nullptr) const;
  NamedTensors block_parameters(std::size_t i) const;

 private:
  int tp_size() const { return tp_ ? tp_->size() : 1; }
  int tp_rank() const { return tp_ ? tp_->rank() : 0; }

  ModelConfig config_;
  at::ScalarType dtype_;
  at::Tensor embed_, final_norm_, lm_head_, score_;
  std::vector<Block> blocks_;
  at::Tensor inv_freq_;
  parallel::Comm* tp_ = nullptr;
  StageView stage_;
  bool checkpointing_ = false, chunked_attention_ = false;
  UnitHooks* hooks_ = nullptr;
};

// Checks that `weights` are exactly the parameters `config` describes (names and shapes; a tied
// model may also carry lm_head.weight). util::Error names the tensor.
void validate_weights(const ModelConfig& config, const NamedTensors& weights, const std::string& where);

// NEFTune: emb + Uniform(-m, m) noise with m = alpha / sqrt(T * hidden), T the padded length of
// this batch (specs/algorithms.md §2).
at::Tensor add_neftune_noise(const at::Tensor& emb, double alpha);

// The dtype named by --dtype / config.json ("fp32", "float32", "bf16", "bfloat16", "fp16", "float16").
at::ScalarType parse_dtype(const std::string& name);

}  // namespace medgpt::model
