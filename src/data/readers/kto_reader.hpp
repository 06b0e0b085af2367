// Unpaired preference records for KTO (TRL's unpaired format):
//   {"prompt": "..." | [messages], "completion": "..." | [assistant message], "label": true|false}
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/chat_template.hpp"
#include "data/readers/messages.hpp"

namespace medgpt::data {

struct KtoRecord {
  std::vector<ChatMessage> prompt;  // optional system, user/assistant alternating, ends with user
  std::string completion;           // the assistant's answer to the last user turn
  bool label = false;               // true: desirable, false: undesirable
};

KtoRecord parse_kto(const nlohmann::json& record, const std::string& where, const TurnRules& rules = {});

}  // namespace medgpt::data
