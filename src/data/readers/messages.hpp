// Conversation turns shared by every record reader: MedicalGPT's role names, its tool-turn text,
// and the one check that a conversation is well formed (optional system first, then user and
// assistant alternating). Errors name the offending turn by its place in the record, e.g.
// "f.jsonl:12: conversations[3]: two user turns in a row (...)".
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/chat_template.hpp"

namespace medgpt::data {

// A message with the place it came from, for error messages: "conversations[3]", "history[1][0]",
// "question", "system_prompt".
struct Turn {
  ChatMessage message;
  std::string field;
};

// MedicalGPT repairs some malformed conversations silently (supervised_finetuning.py); medgpt
// refuses them by default so that bad data is seen, and does what MedicalGPT does when asked.
struct TurnRules {
  bool drop_leading_assistant = false;  // drop assistant turns before the first user turn
  bool merge_same_role = false;         // join consecutive user (or assistant) turns with "\n"
  bool drop_unanswered_user = false;    // sft: drop a last user turn that has no answer
};

// "system", "user" or "assistant" for a ShareGPT "from" / OpenAI "role" value as MedicalGPT maps
// them: human/user/observation/tool -> user, gpt/assistant/function_call -> assistant. nullopt
// for anything else.
std::optional<std::string> canonical_role(const std::string& role);

// A list of message objects at `path` of the record: ShareGPT {"from", "value"} or OpenAI
// {"role", "content", optional "reasoning_content"}. Observation and function_call turns get
// MedicalGPT's default text ("Observation: ...", "Action: name\nAction Input: {...}").
std::vector<Turn> read_turns(const nlohmann::json& list, const std::string& where, const std::string& path,
                             const std::string& todo);

// MedicalGPT's history [[question, answer], ...] as alternating user/assistant turns.
std::vector<Turn> read_history(const nlohmann::json& history, const std::string& where, const std::string& path,
                               const std::string& todo);

// A prompt given as a plain string (one user turn, field `path`) or as a list of messages.
std::vector<Turn> read_prompt(const nlohmann::json& prompt, const std::string& where, const std::string& path,
                              const std::string& todo);

// An answer given as a string, or as a list holding one assistant message (TRL's conversational
// form): record[key]; missing, wrong types and other roles are errors naming `key`.
std::string read_answer(const nlohmann::json& record, const std::string& key, const std::string& where,
                        const std::string& todo);

// What the last turn must be: the assistant's answer (sft) or the user turn being answered (prompts).
enum class Ending { Assistant, User };

// Checks the order of `turns` and returns the messages: an optional system message first (empty
// system prompts are dropped), then user/assistant alternating, starting with user and ending as
// `ending` says. `list_path` names the whole list for "empty conversation". Errors are
// util::Error "<where>: <turn field>: <problem>; <what to do>".
std::vector<ChatMessage> normalize_turns(std::vector<Turn> turns, Ending ending, const std::string& where,
                                         const std::string& list_path, const TurnRules& rules);

}  // namespace medgpt::data
