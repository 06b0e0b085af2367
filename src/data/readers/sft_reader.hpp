// Supervised fine-tuning records, in the three shapes MedicalGPT users have:
//   ShareGPT  {"conversations": [{"from": "human"|"gpt"|"system"|..., "value": "..."}], "system_prompt"?}
//   OpenAI    {"messages": [{"role": "user"|"assistant"|"system", "content": "..."}]}
//   Alpaca    {"instruction", "input"?, "output", "history"?: [[q, a], ...], "system"?}
// Multi-turn; every assistant turn is an answer to train on.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/chat_template.hpp"
#include "data/readers/messages.hpp"

namespace medgpt::data {

struct SftRecord {
  // An optional system message, then user/assistant alternating, ending with assistant.
  std::vector<ChatMessage> messages;
};

// `where` is "file:line"; errors are util::Error "file:line: field: problem; what to do".
SftRecord parse_sft(const nlohmann::json& record, const std::string& where, const TurnRules& rules = {});

}  // namespace medgpt::data
