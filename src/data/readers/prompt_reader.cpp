#include "data/readers/prompt_reader.hpp"

#include <optional>

#include "data/readers/fields.hpp"

namespace medgpt::data {

namespace {

using json = nlohmann::json;

const char* const kPromptTodo =
    R"(a prompt record is {"question": "...", "answer": "..."}, {"prompt": "..." or [messages], "answer": "..."} or {"messages": [...]})";
const char* const kChoiceTodo =
    R"(a multiple-choice record is {"question": "...", "options": {"A": "...", "B": "...", "C": "...", "D": "..."}, "answer": "B"})";

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::map<std::string, std::string> read_options(const json& v, const std::string& where) {
  std::map<std::string, std::string> out;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string f = fields::member("options", it.key());
      if (it.key().size() != 1 || it.key()[0] < 'A' || it.key()[0] > 'Z')
        fields::fail(where, f, "option keys must be single capital letters", kChoiceTodo);
      out[it.key()] = fields::expect_string(it.value(), where, f, kChoiceTodo);
    }
  } else if (v.is_array()) {  // ["...", "..."] -> A, B, ...
    if (v.size() > 26) fields::fail(where, "options", "more than 26 options", kChoiceTodo);
    for (std::size_t i = 0; i < v.size(); ++i)
      out[std::string(1, static_cast<char>('A' + i))] = fields::expect_string(v[i], where, fields::index("options", i), kChoiceTodo);
  } else {
    fields::fail(where, "options", "expected an object {\"A\": \"...\", ...}, got " + fields::type_name(v), kChoiceTodo);
  }
  if (out.size() < 2) fields::fail(where, "options", "a multiple-choice question needs at least two options", kChoiceTodo);
  return out;
}

}  // namespace

PromptRecord parse_prompt(const json& j, const std::string& where, const TurnRules& rules) {
  fields::require_object(j, where, kPromptTodo);
  PromptRecord rec;
  std::vector<Turn> turns;
  std::string list_path;
  std::optional<std::string> trailing_answer;  // a messages list that ends with the reference answer
  if (const json* m = fields::find(j, "messages")) {
    list_path = "messages";
    turns = read_turns(*m, where, list_path, kPromptTodo);
    if (!turns.empty() && turns.back().message.role == "assistant") {
      if (fields::find(j, "answer"))
        fields::fail(where, turns.back().field, "messages end with an assistant turn and \"answer\" is given too",
                     "keep one reference answer: drop the last assistant turn or the answer field");
      trailing_answer = turns.back().message.content;
      turns.pop_back();
    }
  } else if (const json* p = fields::find(j, "prompt")) {
    list_path = "prompt";
    turns = read_prompt(*p, where, list_path, kPromptTodo);
  } else if (fields::find(j, "question")) {
    list_path = "question";
    turns.push_back({{"user", fields::require_string(j, "question", where, "question", kPromptTodo), {}}, "question"});
  } else {
    fields::fail(where, "question", "missing (no question, prompt or messages field)", kPromptTodo);
  }
  if (auto system = fields::optional_string(j, "system", where, "system", kPromptTodo))
    if (turns.empty() || turns[0].message.role != "system") turns.insert(turns.begin(), Turn{{"system", *system, {}}, "system"});
  rec.prompt = normalize_turns(std::move(turns), Ending::User, where, list_path, rules);

  if (const json* a = fields::find(j, "answer")) {
    if (a->is_string())
      rec.answer = a->get<std::string>();
    else if (a->is_number())  // numeric gold answers (math data) compare as their JSON text
      rec.answer = a->dump();
    else
      fields::fail(where, "answer", "expected a string or a number, got " + fields::type_name(*a), kPromptTodo);
  } else if (trailing_answer) {
    rec.answer = *trailing_answer;
  }

  if (const json* o = fields::find(j, "options")) {
    rec.options = read_options(*o, where);
    if (!fields::find(j, "answer"))
      fields::fail(where, "answer", "missing, and a multiple-choice question needs the letter of the right option", kChoiceTodo);
    rec.answer = trim(rec.answer);
    if (!rec.options.count(rec.answer)) {
      std::string letters;
      for (const auto& [k, v] : rec.options) letters += (letters.empty() ? "" : ", ") + k;
      fields::fail(where, "answer", "'" + rec.answer + "' is not one of the option letters (" + letters + ")",
                   "give the letter of the right option");
    }
    std::string& q = rec.prompt.back().content;
    for (const auto& [k, v] : rec.options) q += "\n" + k + ". " + v;
  }
  return rec;
}

}  // namespace medgpt::data
