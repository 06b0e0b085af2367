#include "align/stage.hpp"

#include <boost/program_options.hpp>

#include <cctype>

#include "align/lm.hpp"
#include "data/loader.hpp"
#include "data/pair_rows.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace medgpt::align {

namespace {

using data::Kind;

// The table: name, source, rows, group, reward model, reference, reference forwards, minimum micro-batch.
const std::vector<Stage>& stages() {
  static const std::vector<Stage> table = [] {
    auto row = [](const char* name, Kind source, Kind rows, std::size_t group, bool reward, bool reference, double forwards,
                  std::size_t min_micro, bool pipelined) {
      Stage s;
      s.name = name;
      s.source = source;
      s.rows = rows;
      s.group = group;
      s.reward_model = reward;
      s.reference = reference;
      s.reference_forwards = forwards;
      s.min_micro_batch = min_micro;
      s.pipelined = pipelined;
      return s;
    };
    return std::vector<Stage>{
        row("pt", Kind::Pt, Kind::Pt, 1, false, false, 0, 1, true),
        row("sft", Kind::Sft, Kind::Sft, 1, false, false, 0, 1, true),
        row("rm", Kind::Pref, Kind::Sft, 2, true, false, 0, 1, true),
        row("dpo", Kind::Pref, Kind::Sft, 2, false, true, 1, 1, true),
        row("orpo", Kind::Pref, Kind::Sft, 2, false, false, 0, 1, true),
        row("simpo", Kind::Pref, Kind::Sft, 2, false, false, 0, 1, true),
        row("kto", Kind::Kto, Kind::Sft, 1, false, true, 3, 2, false),
    };
  }();
  return table;
}

}  // namespace

std::string stage_list() {
  std::string out;
  for (const Stage& s : stages()) out += (out.empty() ? "" : ", ") + s.name;
  return out;
}

void add_stage_options(po::options_description& d) {
  add_dpo_options(d);
  add_reward_options(d);
  add_orpo_options(d);
  add_simpo_options(d);
  add_kto_options(d);
}

Stage parse_stage(const po::variables_map& vm, std::int64_t micro_batch_size) {
  const std::string name = vm.count("stage") ? vm["stage"].as<std::string>() : "";
  if (name.empty()) util::fail("--stage", "missing", "use one of: " + stage_list());
  const Stage* found = nullptr;
  for (const Stage& s : stages())
    if (s.name == name) found = &s;
  if (!found) util::fail("--stage", "\"" + name + "\" is not a stage of medgpt train", "use one of: " + stage_list());
  Stage s = *found;
  if (s.name == "dpo") s.dpo = dpo_options(vm);
  if (s.name == "rm") s.rm = reward_options(vm);
  if (s.name == "orpo") s.orpo = orpo_options(vm);
  if (s.name == "simpo") s.simpo = simpo_options(vm);
  if (s.name == "kto") s.kto = kto_options(vm);
  if (micro_batch_size < static_cast<std::int64_t>(s.min_micro_batch)) {
    std::string upper = s.name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    util::fail("--train.micro_batch_size",
               upper + " needs at least " + std::to_string(s.min_micro_batch) +
                   " rows per micro-batch (its KL estimate pairs each prompt with another row's completion)",
               "e.g. --train.micro_batch_size 4");
  }
  return s;
}

data::TokenArrays read_stage_rows(const Stage& s, const std::string& path, const std::string& split, data::CorpusInfo* info) {
  if (s.source == Kind::Pref) return data::pair_rows(data::read_columns(path, s.source, split, info));
  if (s.source == Kind::Kto) {
    data::TokenArrays rows = data::kto_rows(data::read_columns(path, s.source, split, info));
    if (split.empty()) {  // TRL's advice on the class balance
      double good = 0;
      for (auto d : rows.desirable) good += d;
      const double bad = static_cast<double>(rows.desirable.size()) - good;
      const double ratio = bad > 0 ? s.kto.desirable_weight * good / (s.kto.undesirable_weight * bad) : 0;
      if (good == 0 || bad == 0)
        util::fail(path, "has only " + std::string(good == 0 ? "undesirable" : "desirable") + " examples", "KTO needs both labels in its data");
      if (ratio < 1.0 || ratio > 4.0 / 3.0)
        util::log("warning: kto: desirable_weight x desirable / (undesirable_weight x undesirable) = " + std::to_string(ratio) + " (" +
                  std::to_string(static_cast<long long>(good)) + " desirable, " + std::to_string(static_cast<long long>(bad)) +
                  " undesirable); the KTO paper advises [1, 4/3]: adjust --kto.desirable_weight / --kto.undesirable_weight");
    }
    return rows;
  }
  return data::read_corpus(path, s.rows, split, info);
}

std::unique_ptr<train::Objective> make_objective(const Stage& s, model::Transformer& policy, const model::Transformer* reference,
                                                 parallel::Grid& grid, bool packed, double neftune_alpha) {
  if (s.name == "dpo") return std::make_unique<DpoObjective>(policy, reference, s.dpo);
  if (s.name == "rm") return std::make_unique<RewardObjective>(policy, s.rm);
  if (s.name == "orpo") return std::make_unique<OrpoObjective>(policy, s.orpo);
  if (s.name == "simpo") return std::make_unique<CpoObjective>(policy, s.simpo);
  if (s.name == "kto") return std::make_unique<KtoObjective>(policy, reference, s.kto, &grid.dp());
  return std::make_unique<LmObjective>(policy, packed, neftune_alpha);
}

}  // namespace medgpt::align
