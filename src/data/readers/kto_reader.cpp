#include "data/readers/kto_reader.hpp"

#include "data/readers/fields.hpp"

namespace medgpt::data {

namespace {
const char* const kKtoTodo =
    R"(a kto record is {"prompt": "..." or [messages], "completion": "...", "label": true or false})";
}  // namespace

KtoRecord parse_kto(const nlohmann::json& j, const std::string& where, const TurnRules& rules) {
  fields::require_object(j, where, kKtoTodo);
  const nlohmann::json* p = fields::find(j, "prompt");
  if (!p) fields::fail(where, "prompt", "missing", kKtoTodo);
  KtoRecord rec;
  rec.prompt = normalize_turns(read_prompt(*p, where, "prompt", kKtoTodo), Ending::User, where, "prompt", rules);
  rec.completion = read_answer(j, "completion", where, kKtoTodo);
  const nlohmann::json* label = fields::find(j, "label");
  if (!label) fields::fail(where, "label", "missing", kKtoTodo);
  if (!label->is_boolean())
    fields::fail(where, "label", "expected true or false, got " + fields::type_name(*label),
                 "write \"label\": true for a desirable completion and false for an undesirable one");
  rec.label = label->get<bool>();
  return rec;
}

}  // namespace medgpt::data
