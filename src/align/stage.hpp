// The stages of `medgpt train`, one table: what each reads (its corpus kind) and what the loader
// serves it (pt blocks or sft-kind rows), pairs or single rows, whether it trains a reward model,
// whether it needs the starting model as a frozen reference and the forward passes that costs, its
// own options (--dpo.*, --rm.*, --orpo.*, --simpo.*, --kto.*) and its objective. The trainer and
// cmd_train do everything the stages share and ask the table for the rest.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "align/cpo.hpp"
#include "align/dpo.hpp"
#include "align/kto.hpp"
#include "align/orpo.hpp"
#include "align/reward.hpp"
#include "data/corpus.hpp"
#include "parallel/grid.hpp"
#include "train/objective.hpp"
#include "util/options_fwd.hpp"

namespace medgpt::align {

struct Stage {
  std::string name;             // pt | sft | rm | dpo | orpo | simpo | kto
  data::Kind source;            // the corpus kind it reads (raw input is prepared as this kind)
  data::Kind rows;              // what the loader serves: pt blocks, or sft-kind rows
  std::size_t group = 1;        // 2: chosen/rejected pairs
  bool reward_model = false;    // trains a sequence classifier (a score head), not a causal LM
  bool reference = false;       // needs the starting model as a frozen reference
  // Forward passes of the reference (and no-grad policy passes) per training row, when the
  // reference runs: DPO 1; KTO 3 (the reference on its rows and on the mismatched KL rows, and
  // the policy's no-grad KL pass). Each costs 2 x parameters per token.
  double reference_forwards = 0;
  std::size_t min_micro_batch = 1;  // KTO's KL estimate pairs each prompt with another row's completion
  bool pipelined = false;           // its loss splits over pipeline stages (train::Objective::stage_forward)
  // Its own options, read and checked when the stage is chosen.
  DpoOptions dpo;
  RewardOptions rm;
  OrpoOptions orpo;
  CpoOptions simpo;
  KtoOptions kto;

  // Whether a reference model runs during training (DPO can precompute its log-probs instead).
  bool runs_reference() const { return reference && !dpo.precompute_ref_log_probs; }
  // Training FLOPs per token beyond the policy's forward and backward: 2 x params per extra pass.
  double extra_flops_per_param() const { return runs_reference() ? 2.0 * reference_forwards : 0.0; }
};

// "pt, sft, rm, dpo, orpo, simpo, kto"
std::string stage_list();
// Every stage's options (--dpo.*, --rm.*, --orpo.*, --simpo.*, --kto.*).
void add_stage_options(po::options_description& d);
// The stage named by --stage with its own options read and checked; `micro_batch_size` is checked
// against what the stage needs. util::Error names the option.
Stage parse_stage(const po::variables_map& vm, std::int64_t micro_batch_size);

// A stage's training rows from a prepared corpus split ("" or "valid").
data::TokenArrays read_stage_rows(const Stage& s, const std::string& path, const std::string& split, data::CorpusInfo* info);

// The stage's objective over `policy` (and `reference`, null for LoRA: the base under the adapters).
std::unique_ptr<train::Objective> make_objective(const Stage& s, model::Transformer& policy, const model::Transformer* reference,
                                                 parallel::Grid& grid, bool packed, double neftune_alpha);

}  // namespace medgpt::align
