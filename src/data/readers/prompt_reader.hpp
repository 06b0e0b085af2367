// Prompts for RL (GRPO/RLOO rule rewards) and evaluation, with an optional reference answer:
//   {"question": "...", "answer"?: "..."}                      (MedicalGPT's GRPO data)
//   {"prompt": "..." | [messages], "answer"?: ...}
//   {"messages": [..., user turn], "answer"?: ...}  (a last assistant turn is taken as the answer)
//   multiple choice: {"question": "...", "options": {"A": "...", ..., "E": "..."}, "answer": "C"}
// An optional "system" string goes first when the prompt has no system turn.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/chat_template.hpp"
#include "data/readers/messages.hpp"

namespace medgpt::data {

struct PromptRecord {
  // Optional system, user/assistant alternating, ends with user. For a multiple-choice question
  // the options are appended to the last user turn as lines "A. text" (that is what the model
  // sees) and also kept in `options`.
  std::vector<ChatMessage> prompt;
  std::string answer;                              // "" when none is given; an option letter for MC
  std::map<std::string, std::string> options;      // letter -> text; empty unless multiple choice
};

PromptRecord parse_prompt(const nlohmann::json& record, const std::string& where, const TurnRules& rules = {});

}  // namespace medgpt::data
