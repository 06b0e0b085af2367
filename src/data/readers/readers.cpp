#include "data/readers/readers.hpp"

namespace medgpt::data {

void check_record(Kind kind, const nlohmann::json& record, const std::string& where, const TurnRules& rules) {
  switch (kind) {
    case Kind::Pt: parse_pt(record, where); return;
    case Kind::Sft: parse_sft(record, where, rules); return;
    case Kind::Pref: parse_pref(record, where, rules); return;
    case Kind::Kto: parse_kto(record, where, rules); return;
    case Kind::Prompt: parse_prompt(record, where, rules); return;
  }
}

}  // namespace medgpt::data
