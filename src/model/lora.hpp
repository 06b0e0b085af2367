// LoRA / rsLoRA as PEFT defines them (shared/specs/algorithms.md §3): a frozen Linear W [out, in]
// gains lora_A [r, in] and lora_B [out, r] beside it, and
//   y = base(x) + scale * lora_B(lora_A(dropout(x))),  scale = alpha / r  (rsLoRA: alpha / sqrt(r)),
// with x cast to the adapter dtype for the branch and the sum cast back to the base output dtype.
// A starts kaiming-uniform (a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))), B at zero, so a fresh
// adapter leaves the model unchanged. Adapters are saved and loaded in PEFT's format
// (adapter_model.safetensors + adapter_config.json) and can be merged: W <- W + scale * B @ A.
// The adapter lives beside the Linear it adapts (Linear::lora) and is split over tensor-parallel
// ranks with it (Megatron/NeMo's layout):
// - column-parallel q/k/v/gate/up (output rows split): A [r, in] replicated and entered through
//   parallel::copy_to_tp (its per-rank gradient is partial and gets summed), B [out/tp, r] split like W;
// - row-parallel o/down (input columns split): A [r, in/tp] split like W, the partial A·x summed
//   with parallel::reduce_from_tp, B [out, r] replicated (its gradient is then the same on every rank);
// - k/v replicated when kv heads < tp: A and B replicated, entered through copy_to_tp like W.
// Every rank draws the full A from the same seed and keeps its part, so a tp model starts as the
// tp=1 one; save_lora gathers full tensors and load_lora splits them, so adapter folders do not
// depend on tp. Under QLoRA the frozen NF4 base is split the same way (model/nf4.hpp).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parallel/comm.hpp"
#include "model/transformer.hpp"

namespace medgpt::model {

struct LoraAdapter {
  at::Tensor A, B;       // lora_A.weight [r, in], lora_B.weight [out, r] (under tp: this rank's part); trainable
  double scale = 1.0;    // alpha / r, or alpha / sqrt(r) with rsLoRA
  double dropout = 0.0;  // on the branch input, in training mode only
  bool enabled = true;   // false: y = base(x) (PEFT's disable_adapter(), e.g. a DPO reference pass)
  bool training = false;
  ParallelRole role = ParallelRole::kReplicated;  // its Linear's (see above)
  parallel::Comm* tp = nullptr;                   // its Linear's; null without tensor parallelism
};

// scale * B(A(dropout(x))) in the adapter dtype, with the collectives the adapter's split needs
// (x is this rank's input of the layer: replicated for column-parallel, split for row-parallel).
// Dropout draws its mask over the full layer input from the default generator (a row-parallel
// adapter keeps its columns): with the generator seeded alike across the tp group, every rank drops
// the inputs tp 1 would.
at::Tensor lora_delta(const LoraAdapter& a, const at::Tensor& x);

// PEFT's module names of the seven linear layers of a block, in block order.
const std::vector<std::string>& lora_module_names();
// "all" or a comma-separated subset of lora_module_names() (e.g. "q_proj,v_proj"); util::Error
// names an unknown entry.
std::vector<std::string> parse_lora_targets(const std::string& spec);

struct LoraConfig {
  std::vector<std::string> target_modules = lora_module_names();  // MedicalGPT's default "all"
  std::int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.05;
  bool rslora = false;
  at::ScalarType dtype = at::kFloat;  // adapter weights (PEFT keeps them fp32 over a bf16 base)
  std::string base_model_name_or_path;
  std::string task_type = "CAUSAL_LM";
  // PEFT's per-module overrides, keyed by a regex matched against the end of the module name.
  std::map<std::string, std::int64_t> rank_pattern;
  std::map<std::string, double> alpha_pattern;

  double scale() const { return scale_for(r, alpha); }
  double scale_for(std::int64_t rank, double lora_alpha) const;
};

// Adds fresh adapters (A kaiming-uniform from `seed`, B zeros) to the targeted Linear layers of
// every block and freezes every base parameter. Replaces adapters already there.
void apply_lora(Transformer& m, const LoraConfig& c, std::uint64_t seed);
// Removes every adapter.
void remove_lora(Transformer& m);

// The adapter weights by PEFT's saved names
// ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), in layer/module order; for a
// reward model (a score head) also the head, trained whole: "base_model.model.score.weight"
// (PEFT's SEQ_CLS modules_to_save, as PEFT saves it).
NamedTensors lora_parameters(const Transformer& m);
// The dimension a lora_parameters() tensor is split along over tp ranks (lora_A: 1 for
// row-parallel layers; lora_B: 0 for column-parallel layers), or -1 when every rank holds it whole.
int lora_split_dim(const Transformer& m, const std::string& name);
// The same from the adapted layer's split dimension (0 column-parallel, 1 row-parallel, -1 none):
// A [r, in] follows a row-parallel W, B [out, r] a column-parallel one.
int lora_split_dim(int base_split_dim, bool is_a);
// The weight a PEFT key adapts ("model.layers.0.self_attn.q_proj.weight") and whether the key is
// lora_A; false when it is not a LoRA key.
bool lora_base_weight(const std::string& key, std::string* weight, bool* is_a);
void set_lora_enabled(Transformer& m, bool on);
void set_lora_training(Transformer& m, bool on);

// PEFT's `with model.disable_adapter():`: the adapters are off for the guard's scope and on again
// after it, also when the scope ends by an exception.
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(Transformer& m) : m_(m) { set_lora_enabled(m_, false); }
  ~AdaptersDisabled() { set_lora_enabled(m_, true); }
  AdaptersDisabled(const AdaptersDisabled&) = delete;
  AdaptersDisabled& operator=(const AdaptersDisabled&) = delete;

 private:
  Transformer& m_;
};

// PEFT's adapter_config.json for `c` (save_pretrained writes it with indent 2 and sorted keys).
nlohmann::json adapter_config_json(const LoraConfig& c);
// Reads dir/adapter_config.json; util::Error on anything medgpt cannot apply (not LORA, DoRA,
// bias other than "none", fan_in_fan_out, modules_to_save other than a SEQ_CLS adapter's score).
LoraConfig read_adapter_config(const std::string& dir);
// Writes dir/adapter_model.safetensors and dir/adapter_config.json (inference_mode true). Under
// tp it is collective over the model's tp group: the full tensors are gathered and tp rank 0
// writes them (with data parallelism, call it from one tp group only, or give each its own dir);
// every rank returns once the folder is written, or throws if rank 0 could not write it. Under
// pipeline parallelism (`pp`, collective over it too) each stage holds its layers' adapters:
// stage 0 collects them and writes.
void save_lora(const Transformer& m, const LoraConfig& c, const std::string& dir, parallel::Comm* pp = nullptr);
// Loads a PEFT adapter folder (ours or PEFT's) onto `m`, replacing any adapters: ranks come from the
// tensors, scales from r/lora_alpha/use_rslora and the patterns; weights are cast to `dtype`.
// Under tp each rank reads the full tensors and keeps its part.
// util::Error names the file and tensor on unknown keys, missing halves or shapes that do not fit.
LoraConfig load_lora(Transformer& m, const std::string& dir, at::ScalarType dtype = at::kFloat);
// Whether dir holds a reward model's adapter (task_type SEQ_CLS: the base becomes a classifier).
bool is_reward_adapter(const std::string& dir);

// W <- W + scale * B @ A for every adapter (in fp32, rounded once to W's dtype), then removes the
// adapters. The base must not be NF4-quantized. Works on a tensor-parallel model as it is (each
// rank's B·A is exactly its shard of the full update; no communication).
void merge_lora(Transformer& m);

}  // namespace medgpt::model
