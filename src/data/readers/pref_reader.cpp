#include "data/readers/pref_reader.hpp"

#include "data/readers/fields.hpp"

namespace medgpt::data {

namespace {

using json = nlohmann::json;

const char* const kMedicalGptTodo =
    R"(a MedicalGPT preference record is {"system": "", "history": [], "question": "...", "response_chosen": "...", "response_rejected": "..."})";
const char* const kRmTodo =
    R"(a preference record is {"conversations": [{"from": "human", "value": "..."}], "chosen": "...", "rejected": "..."})";
const char* const kTrlTodo =
    R"(a TRL preference record is {"prompt": "..." or [messages], "chosen": "..." or [{"role": "assistant", "content": "..."}], "rejected": ...})";
const char* const kAnyTodo =
    R"(give MedicalGPT's "question"/"response_chosen"/"response_rejected", "conversations" with "chosen"/"rejected", or TRL's "prompt"/"chosen"/"rejected")";

PrefRecord medicalgpt_form(const json& j, const std::string& where, const TurnRules& rules) {
  std::vector<Turn> turns;
  if (auto system = fields::optional_string(j, "system", where, "system", kMedicalGptTodo))
    turns.push_back({{"system", *system, {}}, "system"});
  if (const json* h = fields::find(j, "history")) {
    auto hist = read_history(*h, where, "history", kMedicalGptTodo);
    turns.insert(turns.end(), hist.begin(), hist.end());
  }
  turns.push_back({{"user", fields::require_string(j, "question", where, "question", kMedicalGptTodo), {}}, "question"});
  PrefRecord rec;
  rec.prompt = normalize_turns(std::move(turns), Ending::User, where, "question", rules);
  rec.chosen = fields::require_string(j, "response_chosen", where, "response_chosen", kMedicalGptTodo);
  rec.rejected = fields::require_string(j, "response_rejected", where, "response_rejected", kMedicalGptTodo);
  return rec;
}

PrefRecord conversations_form(const json& j, const json& conv, const std::string& where, const TurnRules& rules) {
  auto turns = read_turns(conv, where, "conversations", kRmTodo);
  const bool has_system = !turns.empty() && turns[0].message.role == "system" && !turns[0].message.content.empty();
  if (auto sp = fields::optional_string(j, "system_prompt", where, "system_prompt", kRmTodo); sp && !has_system)
    turns.insert(turns.begin(), Turn{{"system", *sp, {}}, "system_prompt"});
  PrefRecord rec;
  rec.prompt = normalize_turns(std::move(turns), Ending::User, where, "conversations", rules);
  rec.chosen = read_answer(j, "chosen", where, kRmTodo);
  rec.rejected = read_answer(j, "rejected", where, kRmTodo);
  return rec;
}

bool same_message(const ChatMessage& a, const ChatMessage& b) { return a.role == b.role && a.content == b.content; }

// TRL's implicit prompt: chosen and rejected are whole conversations that differ only in the last
// (assistant) message; the shared turns before it are the prompt.
PrefRecord implicit_prompt_form(const json& j, const std::string& where, const TurnRules& rules) {
  const json* c = fields::find(j, "chosen");
  const json* r = fields::find(j, "rejected");
  if (!r) fields::fail(where, "rejected", "missing", kTrlTodo);
  if (!r->is_array())
    fields::fail(where, "rejected", "expected a list of messages like chosen, got " + fields::type_name(*r), kTrlTodo);
  auto ct = read_turns(*c, where, "chosen", kTrlTodo);
  auto rt = read_turns(*r, where, "rejected", kTrlTodo);
  PrefRecord rec;
  for (auto* t : {&ct, &rt}) {
    const std::string name = t == &ct ? "chosen" : "rejected";
    if (t->size() < 2)
      fields::fail(where, name, "with no \"prompt\" field, " + name + " must be a whole conversation (the prompt turns, then the answer)",
                   R"(give "prompt" separately, or the user turns before the assistant answer)");
    if (t->back().message.role != "assistant")
      fields::fail(where, t->back().field, "the last message of " + name + " is not an assistant message",
                   "end " + name + " with the assistant's answer");
  }
  if (ct.size() != rt.size())
    fields::fail(where, "rejected", "chosen and rejected have different prompts (" + std::to_string(ct.size() - 1) +
                                        " and " + std::to_string(rt.size() - 1) + " turns before the answer)",
                 R"(with no "prompt" field, chosen and rejected must be the same conversation up to the final answer)");
  for (std::size_t i = 0; i + 1 < ct.size(); ++i)
    if (!same_message(ct[i].message, rt[i].message))
      fields::fail(where, rt[i].field, "differs from " + ct[i].field,
                   R"(with no "prompt" field, chosen and rejected must be the same conversation up to the final answer)");
  rec.chosen = ct.back().message.content;
  rec.rejected = rt.back().message.content;
  ct.pop_back();
  rec.prompt = normalize_turns(std::move(ct), Ending::User, where, "chosen", rules);
  return rec;
}

PrefRecord trl_form(const json& j, const std::string& where, const TurnRules& rules) {
  const json* p = fields::find(j, "prompt");
  if (!p) {
    const json* c = fields::find(j, "chosen");
    if (c && c->is_array()) return implicit_prompt_form(j, where, rules);
    fields::fail(where, "prompt", "missing", kTrlTodo);
  }
  PrefRecord rec;
  rec.prompt = normalize_turns(read_prompt(*p, where, "prompt", kTrlTodo), Ending::User, where, "prompt", rules);
  rec.chosen = read_answer(j, "chosen", where, kTrlTodo);
  rec.rejected = read_answer(j, "rejected", where, kTrlTodo);
  return rec;
}

}  // namespace

PrefRecord parse_pref(const json& j, const std::string& where, const TurnRules& rules) {
  fields::require_object(j, where, kAnyTodo);
  if (fields::find(j, "question") || fields::find(j, "response_chosen") || fields::find(j, "response_rejected"))
    return medicalgpt_form(j, where, rules);
  if (const json* conv = fields::find(j, "conversations")) return conversations_form(j, *conv, where, rules);
  if (fields::find(j, "prompt") || fields::find(j, "chosen") || fields::find(j, "rejected"))
    return trl_form(j, where, rules);
  fields::fail(where, "question",
               "missing (no question/response_chosen/response_rejected, conversations/chosen/rejected or "
               "prompt/chosen/rejected field)",
               kAnyTodo);
}

}  // namespace medgpt::data
