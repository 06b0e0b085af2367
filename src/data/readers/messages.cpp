#include "data/readers/messages.hpp"

#include "data/readers/fields.hpp"
#include "util/error.hpp"

namespace medgpt::data {

namespace {

using json = nlohmann::json;

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Python's json.dumps(v, ensure_ascii=False): ", " and ": " separators, keys in file order. MedicalGPT
// writes function-call arguments this way, so the trained text matches what it trains on.
std::string py_dumps(const nlohmann::ordered_json& v) {
  if (v.is_object()) {
    std::string s = "{";
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!first) s += ", ";
      first = false;
      s += nlohmann::ordered_json(it.key()).dump() + ": " + py_dumps(it.value());
    }
    return s + "}";
  }
  if (v.is_array()) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + py_dumps(v[i]);
    return s + "]";
  }
  return v.dump();
}

// MedicalGPT without --tool_format: a function_call value is a JSON string {"name", "arguments"}
// rendered as "Action: <name>\nAction Input: <arguments as JSON>"; other JSON is kept as written.
std::string function_call_text(const std::string& value, const std::string& where, const std::string& field) {
  nlohmann::ordered_json fc;
  try {
    fc = nlohmann::ordered_json::parse(value);
  } catch (const nlohmann::ordered_json::exception&) {  // also out_of_range: a number past a double
    fields::fail(where, field, "a function_call turn does not hold JSON",
                 R"(write the call as a JSON string such as "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Beijing\"}}")");
  }
  if (!fc.is_object() || !fc.contains("name") || !fc.contains("arguments")) return value;
  const auto& name = fc["name"];
  return "Action: " + (name.is_string() ? name.get<std::string>() : py_dumps(name)) +
         "\nAction Input: " + py_dumps(fc["arguments"]);
}

const std::string& role_of(const Turn& t) { return t.message.role; }

}  // namespace

std::optional<std::string> canonical_role(const std::string& role) {
  if (role == "system") return std::string("system");
  if (role == "human" || role == "user" || role == "observation" || role == "tool") return std::string("user");
  if (role == "gpt" || role == "assistant" || role == "function_call") return std::string("assistant");
  return std::nullopt;
}

std::vector<Turn> read_turns(const json& list, const std::string& where, const std::string& path,
                             const std::string& todo) {
  if (!list.is_array()) fields::fail(where, path, "expected a list of turns, got " + fields::type_name(list), todo);
  // ShareGPT lists say from/value, OpenAI and TRL lists role/content; either is read anywhere, and
  // a missing key is reported under the name the list's format uses.
  const bool sharegpt = ends_with(path, "conversations");
  std::vector<Turn> turns;
  turns.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    const std::string f = fields::index(path, i);
    if (!m.is_object())
      fields::fail(where, f,
                   std::string("expected a turn object ") + (sharegpt ? "{\"from\", \"value\"}" : "{\"role\", \"content\"}") +
                       ", got " + fields::type_name(m),
                   todo);
    const std::string role_key = m.contains("from") ? "from" : m.contains("role") ? "role" : sharegpt ? "from" : "role";
    const std::string text_key =
        m.contains("value") ? "value" : m.contains("content") ? "content" : sharegpt ? "value" : "content";
    const std::string& raw_role = fields::require_string(m, role_key, where, fields::member(f, role_key), todo);
    const auto role = canonical_role(raw_role);
    if (!role)
      fields::fail(where, fields::member(f, role_key), "unknown role '" + raw_role + "'",
                   "use system, human/user or gpt/assistant (observation/tool and function_call for tool turns)");
    Turn t;
    t.field = f;
    t.message.role = *role;
    t.message.content = fields::require_string(m, text_key, where, fields::member(f, text_key), todo);
    if (raw_role == "observation" || raw_role == "tool") t.message.content = "Observation: " + t.message.content;
    if (raw_role == "function_call")
      t.message.content = function_call_text(t.message.content, where, fields::member(f, text_key));
    if (*role == "assistant")
      if (auto r = fields::optional_string(m, "reasoning_content", where, fields::member(f, "reasoning_content"), todo))
        t.message.reasoning_content = *r;
    turns.push_back(std::move(t));
  }
  return turns;
}

std::vector<Turn> read_history(const json& history, const std::string& where, const std::string& path,
                               const std::string& todo) {
  if (!history.is_array())
    fields::fail(where, path, "expected a list of [question, answer] pairs, got " + fields::type_name(history), todo);
  std::vector<Turn> turns;
  turns.reserve(2 * history.size());
  for (std::size_t i = 0; i < history.size(); ++i) {
    const json& pair = history[i];
    const std::string f = fields::index(path, i);
    if (!pair.is_array() || pair.size() != 2)
      fields::fail(where, f,
                   "expected a [question, answer] pair, got " +
                       (pair.is_array() ? "a list of " + std::to_string(pair.size()) : fields::type_name(pair)),
                   todo);
    Turn q, a;
    q.field = fields::index(f, 0);
    q.message.role = "user";
    q.message.content = fields::expect_string(pair[0], where, q.field, todo);
    a.field = fields::index(f, 1);
    a.message.role = "assistant";
    a.message.content = fields::expect_string(pair[1], where, a.field, todo);
    turns.push_back(std::move(q));
    turns.push_back(std::move(a));
  }
  return turns;
}

std::vector<Turn> read_prompt(const json& prompt, const std::string& where, const std::string& path,
                              const std::string& todo) {
  if (prompt.is_string()) return {Turn{{"user", prompt.get<std::string>(), {}}, path}};
  if (!prompt.is_array())
    fields::fail(where, path, "expected a string or a list of messages, got " + fields::type_name(prompt), todo);
  return read_turns(prompt, where, path, todo);
}

std::string read_answer(const json& record, const std::string& key, const std::string& where, const std::string& todo) {
  const json* v = fields::find(record, key);
  if (!v) fields::fail(where, key, "missing", todo);
  if (v->is_string()) return v->get<std::string>();
  if (!v->is_array())
    fields::fail(where, key, "expected a string or a list with one assistant message, got " + fields::type_name(*v), todo);
  auto turns = read_turns(*v, where, key, todo);
  if (turns.size() != 1)
    fields::fail(where, key, "expected one assistant message, got " + std::to_string(turns.size()) + " messages", todo);
  if (turns[0].message.role != "assistant")
    fields::fail(where, turns[0].field, "the answer is a " + turns[0].message.role + " message, not an assistant message",
                 todo);
  return turns[0].message.content;
}

std::vector<ChatMessage> normalize_turns(std::vector<Turn> turns, Ending ending, const std::string& where,
                                         const std::string& list_path, const TurnRules& rules) {
  const std::string kind = ending == Ending::Assistant ? "conversation" : "prompt";
  if (turns.empty())
    fields::fail(where, list_path, "empty " + kind + " (no turns)",
                 ending == Ending::Assistant ? "give at least a user turn and the assistant's answer"
                                             : "give at least the user turn to answer");
  std::vector<ChatMessage> out;
  std::vector<const Turn*> placed;  // the turns behind `out`, for naming them in errors
  for (const Turn& t : turns) {
    if (role_of(t) == "system") {
      if (t.message.content.empty()) continue;  // "system": "" means no system prompt (MedicalGPT data)
      if (!placed.empty())
        fields::fail(where, t.field, "a system turn after the first turn",
                     "put the system prompt first (a " + kind + " has at most one)");
      out.push_back(t.message);
      placed.push_back(&t);
      continue;
    }
    const Turn* prev = placed.empty() || role_of(*placed.back()) == "system" ? nullptr : placed.back();
    if (!prev && role_of(t) == "assistant") {
      if (rules.drop_leading_assistant) continue;
      fields::fail(where, t.field, "the " + kind + " starts with an assistant turn, but turns must alternate user/assistant starting with the user",
                   "add the user turn it answers, or remove it (MedicalGPT drops a leading assistant turn silently)");
    }
    if (prev && role_of(*prev) == role_of(t)) {
      if (rules.merge_same_role) {
        out.back().content += "\n" + t.message.content;
        continue;
      }
      const std::string other = role_of(t) == "user" ? "assistant" : "user";
      fields::fail(where, t.field,
                   "two " + role_of(t) + " turns in a row (" + prev->field + " and " + t.field +
                       "), but turns must alternate user/assistant",
                   "merge them into one turn or add the missing " + other + " turn between them");
    }
    out.push_back(t.message);
    placed.push_back(&t);
  }
  if (placed.empty() || role_of(*placed.back()) == "system")
    fields::fail(where, list_path, "the " + kind + " has no user turn",
                 ending == Ending::Assistant ? "give at least a user turn and the assistant's answer"
                                             : "give the user turn to answer");
  const Turn& last = *placed.back();
  if (ending == Ending::Assistant && role_of(last) == "user") {
    if (rules.drop_unanswered_user && out.size() >= 2 && out[out.size() - 2].role == "assistant") {
      out.pop_back();
    } else {
      fields::fail(where, last.field, "the conversation ends with a user turn that has no answer",
                   "end it with the assistant's reply (sft trains on the assistant turns)");
    }
  }
  if (ending == Ending::User && role_of(last) == "assistant")
    fields::fail(where, last.field, "the prompt ends with an assistant turn",
                 "end the prompt with the user turn that is to be answered");
  return out;
}

}  // namespace medgpt::data
