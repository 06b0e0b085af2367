#include "data/readers/sft_reader.hpp"

#include "data/readers/fields.hpp"

namespace medgpt::data {

namespace {

using json = nlohmann::json;

const char* const kShareGptTodo =
    R"(an sft record is {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]})";
const char* const kOpenAiTodo =
    R"(an sft record is {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]})";
const char* const kAlpacaTodo =
    R"(an Alpaca record is {"instruction": "...", "input": "...", "output": "..."} with optional "history": [["q", "a"], ...] and "system")";
const char* const kAnyTodo =
    R"(give "conversations" (ShareGPT: [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]), "messages" (OpenAI: [{"role": "user", "content": "..."}, ...]) or Alpaca "instruction"/"input"/"output")";

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

std::vector<Turn> alpaca_turns(const json& j, const std::string& where) {
  std::vector<Turn> turns;
  if (auto system = fields::optional_string(j, "system", where, "system", kAlpacaTodo))
    turns.push_back({{"system", *system, {}}, "system"});
  if (const json* h = fields::find(j, "history")) {
    auto hist = read_history(*h, where, "history", kAlpacaTodo);
    turns.insert(turns.end(), hist.begin(), hist.end());
  }
  auto instruction = fields::optional_string(j, "instruction", where, "instruction", kAlpacaTodo);
  auto input = fields::optional_string(j, "input", where, "input", kAlpacaTodo);
  if (!instruction && !input) fields::fail(where, "instruction", "missing", kAlpacaTodo);
  // convert_dataset.py: instruction + "\n\n" + input when input is not blank. A record with only
  // input/output is MedicalGPT's "qa" form.
  Turn user{{"user", instruction.value_or(""), {}}, instruction ? "instruction" : "input"};
  if (input && !blank(*input)) user.message.content = instruction ? *instruction + "\n\n" + *input : *input;
  turns.push_back(std::move(user));
  turns.push_back({{"assistant", fields::require_string(j, "output", where, "output", kAlpacaTodo), {}}, "output"});
  return turns;
}

}  // namespace

SftRecord parse_sft(const json& j, const std::string& where, const TurnRules& rules) {
  fields::require_object(j, where, kAnyTodo);
  SftRecord rec;
  if (const json* conv = fields::find(j, "conversations")) {
    auto turns = read_turns(*conv, where, "conversations", kShareGptTodo);
    // MedicalGPT: a system turn in the conversation wins over the top-level system_prompt.
    const bool has_system = !turns.empty() && turns[0].message.role == "system" && !turns[0].message.content.empty();
    if (auto sp = fields::optional_string(j, "system_prompt", where, "system_prompt", kShareGptTodo); sp && !has_system) {
      turns.insert(turns.begin(), Turn{{"system", *sp, {}}, "system_prompt"});
    }
    rec.messages = normalize_turns(std::move(turns), Ending::Assistant, where, "conversations", rules);
  } else if (const json* msgs = fields::find(j, "messages")) {
    rec.messages = normalize_turns(read_turns(*msgs, where, "messages", kOpenAiTodo), Ending::Assistant, where,
                                   "messages", rules);
  } else if (fields::find(j, "instruction") || fields::find(j, "output") || fields::find(j, "input")) {
    rec.messages = normalize_turns(alpaca_turns(j, where), Ending::Assistant, where, "instruction", rules);
  } else {
    fields::fail(where, "conversations", "missing (no conversations, messages or instruction/output field)", kAnyTodo);
  }
  return rec;
}

}  // namespace medgpt::data
