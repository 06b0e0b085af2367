#include "app/train_stage.hpp"

#include "align/lm.hpp"
#include "data/loader.hpp"
#include "data/pair_rows.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace medgpt::app {

const char* const kTrainStageList = "pt, sft, rm, dpo, orpo, simpo, kto";

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

double parse_number(const std::string& s, const std::string& option) {
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  util::fail(option, "\"" + s + "\" is not a number", "give comma-separated numbers, e.g. 1,0.5");
}

double number(const po::variables_map& vm, const char* key) { return vm[key].as<double>(); }

}  // namespace

TrainStage parse_train_stage(const po::variables_map& vm) {
  TrainStage s;
  s.name = required(vm, "stage");
  using data::Kind;
  if (s.name == "pt") s.source = s.rows = Kind::Pt;
  else if (s.name == "sft") s.source = s.rows = Kind::Sft;
  else if (s.name == "rm" || s.name == "dpo" || s.name == "orpo" || s.name == "simpo") s.source = Kind::Pref, s.rows = Kind::Sft, s.group = 2;
  else if (s.name == "kto") s.source = Kind::Kto, s.rows = Kind::Sft;
  else util::fail("--stage", "\"" + s.name + "\" is not a stage of medgpt train", std::string("use one of: ") + kTrainStageList);
  s.reference = s.name == "dpo" || s.name == "kto";

  if (s.name == "dpo") {
    auto& o = s.dpo;
    o.beta = number(vm, "dpo.beta");
    o.label_smoothing = number(vm, "dpo.label_smoothing");
    o.loss_type = split_list(vm["dpo.loss_type"].as<std::string>());
    for (const auto& w : split_list(vm["dpo.loss_weights"].as<std::string>())) o.loss_weights.push_back(parse_number(w, "--dpo.loss_weights"));
    const double rpo = number(vm, "dpo.rpo_alpha");
    if (rpo > 0) {  // RPO = sigmoid + rpo_alpha * sft
      if (o.loss_weights.empty()) o.loss_weights.assign(o.loss_type.size(), 1.0);
      o.loss_type.push_back("sft");
      o.loss_weights.push_back(rpo);
    }
    align::check_dpo_options(o, "--dpo");
    s.precompute_ref = flag(vm, "dpo.precompute_ref_log_probs");
  } else if (s.name == "rm") {
    const double c = number(vm, "rm.center_rewards_coefficient");
    if (c < 0) util::fail("--rm.center_rewards_coefficient", "must not be negative", "e.g. 0.01, or 0 for none");
    if (c > 0) s.rm.center_rewards_coefficient = c;
  } else if (s.name == "orpo") {
    s.orpo.beta = number(vm, "orpo.beta");
    if (!(s.orpo.beta > 0)) util::fail("--orpo.beta", "must be positive", "e.g. 0.1");
  } else if (s.name == "simpo") {
    auto& o = s.simpo;
    o.loss_type = vm["simpo.loss_type"].as<std::string>();
    o.beta = number(vm, "simpo.beta");
    o.simpo_gamma = number(vm, "simpo.gamma");
    o.cpo_alpha = number(vm, "simpo.cpo_alpha");
    o.label_smoothing = number(vm, "simpo.label_smoothing");
    align::check_cpo_options(o, "--simpo");
  } else if (s.name == "kto") {
    auto& o = s.kto;
    o.loss_type = vm["kto.loss_type"].as<std::string>();
    o.beta = number(vm, "kto.beta");
    o.desirable_weight = number(vm, "kto.desirable_weight");
    o.undesirable_weight = number(vm, "kto.undesirable_weight");
    align::check_kto_options(o, "--kto");
    if (vm["train.micro_batch_size"].as<std::int64_t>() < 2)
      util::fail("--train.micro_batch_size", "KTO needs at least 2 rows per micro-batch (its KL estimate pairs each prompt with another row's completion)",
                 "e.g. --train.micro_batch_size 4");
  }
  return s;
}

data::TokenArrays read_stage_rows(const TrainStage& s, const std::string& path, const std::string& split, data::CorpusInfo* info) {
  if (s.source == data::Kind::Pref) return data::pair_rows(data::read_columns(path, s.source, split, info));
  if (s.source == data::Kind::Kto) {
    data::TokenArrays rows = data::kto_rows(data::read_columns(path, s.source, split, info));
    if (split.empty()) {  // TRL's advice on the class balance
      double good = 0;
      for (auto d : rows.desirable) good += d;
      const double bad = static_cast<double>(rows.desirable.size()) - good;
      const double ratio = bad > 0 ? s.kto.desirable_weight * good / (s.kto.undesirable_weight * bad) : 0;
      if (good == 0 || bad == 0)
        util::fail(path, "has only " + std::string(good == 0 ? "undesirable" : "desirable") + " examples", "KTO needs both labels in its data");
      if (ratio < 1.0 || ratio > 4.0 / 3.0)
        util::log("warning: kto: desirable_weight x desirable / (undesirable_weight x undesirable) = " + std::to_string(ratio) +
                  " (" + std::to_string(static_cast<long long>(good)) + " desirable, " + std::to_string(static_cast<long long>(bad)) +
                  " undesirable); the KTO paper advises [1, 4/3]: adjust --kto.desirable_weight / --kto.undesirable_weight");
    }
    return rows;
  }
  return data::read_corpus(path, s.rows, split, info);
}

std::unique_ptr<train::Objective> make_objective(const TrainStage& s, model::Transformer& policy, const model::Transformer* reference,
                                                 dist::Grid& grid, bool packed, double neftune_alpha) {
  if (s.name == "dpo") return std::make_unique<align::DpoObjective>(policy, reference, s.dpo);
  if (s.name == "rm") return std::make_unique<align::RewardObjective>(policy, s.rm);
  if (s.name == "orpo") return std::make_unique<align::OrpoObjective>(policy, s.orpo);
  if (s.name == "simpo") return std::make_unique<align::CpoObjective>(policy, s.simpo);
  if (s.name == "kto") return std::make_unique<align::KtoObjective>(policy, reference, s.kto, &grid.dp());
  return std::make_unique<align::LmObjective>(policy, packed, neftune_alpha);
}

void add_train_stage_options(po::options_description& d) {
  d.add_options()
      ("dpo.beta", po::value<double>()->default_value(0.1, "0.1"), "dpo: beta (strength of the reference)")
      ("dpo.loss_type", po::value<std::string>()->default_value("sigmoid"), "dpo: sigmoid, hinge, ipo, robust, exo_pair, nca_pair, bco_pair, sppo_hard, apo_zero, apo_down, discopop, sigmoid_norm, aot, sft; several comma-separated are summed")
      ("dpo.loss_weights", po::value<std::string>()->default_value(""), "dpo: one weight per loss type, comma-separated (default 1 each)")
      ("dpo.label_smoothing", po::value<double>()->default_value(0.0), "dpo: label smoothing for robust, exo_pair, aot")
      ("dpo.rpo_alpha", po::value<double>()->default_value(0.0), "dpo: RPO, adds rpo_alpha x the chosen NLL (0: off)")
      ("dpo.precompute_ref_log_probs", po::value<bool>()->default_value(false)->implicit_value(true), "dpo: reference log-probs computed once, cached in OUT/data/, no reference model during training")
      ("rm.center_rewards_coefficient", po::value<double>()->default_value(0.0), "rm: adds coef x mean((r_chosen + r_rejected)^2) (0: off)")
      ("orpo.beta", po::value<double>()->default_value(0.1, "0.1"), "orpo: lambda, the weight of the odds-ratio term")
      ("simpo.loss_type", po::value<std::string>()->default_value("simpo"), "simpo: simpo, or CPO's sigmoid, hinge, ipo")
      ("simpo.beta", po::value<double>()->default_value(2.0), "simpo: beta (the SimPO paper's 2.0-2.5; CPO uses 0.1)")
      ("simpo.gamma", po::value<double>()->default_value(0.5), "simpo: target reward margin gamma")
      ("simpo.cpo_alpha", po::value<double>()->default_value(0.0), "simpo: weight of the chosen NLL (0: pure SimPO, 1: CPO-SimPO)")
      ("simpo.label_smoothing", po::value<double>()->default_value(0.0), "simpo: label smoothing")
      ("kto.loss_type", po::value<std::string>()->default_value("kto"), "kto: kto or apo_zero_unpaired")
      ("kto.beta", po::value<double>()->default_value(0.1, "0.1"), "kto: beta")
      ("kto.desirable_weight", po::value<double>()->default_value(1.0), "kto: weight of desirable examples' losses")
      ("kto.undesirable_weight", po::value<double>()->default_value(1.0), "kto: weight of undesirable examples' losses");
}

}  // namespace medgpt::app
