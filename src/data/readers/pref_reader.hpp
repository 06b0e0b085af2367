// Preference pairs for reward modelling, DPO and ORPO, in the shapes MedicalGPT and TRL use:
//   MedicalGPT  {"system", "history": [[q, a], ...], "question", "response_chosen", "response_rejected"}
//   MedicalGPT RM/DPO  {"conversations": [prompt turns, ShareGPT], "chosen": "...", "rejected": "..."}
//   TRL  {"prompt": "..." | [messages], "chosen": "..." | [assistant message], "rejected": ...}, or
//        chosen/rejected as whole conversations that share the prompt (TRL's "implicit prompt").
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/chat_template.hpp"
#include "data/readers/messages.hpp"

namespace medgpt::data {

struct PrefRecord {
  std::vector<ChatMessage> prompt;  // optional system, user/assistant alternating, ends with user
  std::string chosen, rejected;     // the two assistant answers to the last user turn
};

PrefRecord parse_pref(const nlohmann::json& record, const std::string& where, const TurnRules& rules = {});

}  // namespace medgpt::data
