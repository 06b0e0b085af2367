// The stages of `medgpt train`: what each trains on (corpus kind, pairs or single rows), whether it
// needs a reference model, its own options (--dpo.*, --rm.*, --orpo.*, --simpo.*, --kto.*) and its
// objective. cmd_train does everything the stages share.
#pragma once

#include <memory>
#include <string>

#include "align/cpo.hpp"
#include "align/dpo.hpp"
#include "align/kto.hpp"
#include "align/orpo.hpp"
#include "align/reward.hpp"
#include "app/command.hpp"
#include "data/corpus.hpp"
#include "dist/grid.hpp"
#include "train/objective.hpp"

namespace medgpt::app {

struct TrainStage {
  std::string name;         // pt | sft | rm | dpo | orpo | simpo | kto
  data::Kind source;        // the corpus kind it reads (raw input is prepared as this kind)
  data::Kind rows;          // what the loader serves: pt blocks, or sft-kind rows
  std::size_t group = 1;    // 2: chosen/rejected pairs
  bool reference = false;   // needs the starting model as a frozen reference
  align::DpoOptions dpo;
  bool precompute_ref = false;
  align::RewardOptions rm;
  align::OrpoOptions orpo;
  align::CpoOptions simpo;
  align::KtoOptions kto;
};

// The stage named by --stage with its options, checked (util::Error names the option).
TrainStage parse_train_stage(const po::variables_map& vm);
void add_train_stage_options(po::options_description& d);
extern const char* const kTrainStageList;  // "pt, sft, rm, dpo, orpo, simpo, kto"

// A stage's training rows from a prepared corpus split ("" or "valid").
data::TokenArrays read_stage_rows(const TrainStage& s, const std::string& path, const std::string& split, data::CorpusInfo* info);

// The stage's objective over `policy` (and `reference`, null for LoRA: the base under the adapters).
std::unique_ptr<train::Objective> make_objective(const TrainStage& s, model::Transformer& policy, const model::Transformer* reference,
                                                 dist::Grid& grid, bool packed, double neftune_alpha);

}  // namespace medgpt::app
