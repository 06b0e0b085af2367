#include "data/readers/pt_reader.hpp"

#include "data/readers/fields.hpp"

namespace medgpt::data {

PtRecord parse_pt(const nlohmann::json& j, const std::string& where) {
  const char* const todo = R"(a pt record is {"text": "..."} (or use a .txt file, one document per line))";
  fields::require_object(j, where, todo);
  return {fields::require_string(j, "text", where, "text", todo)};
}

}  // namespace medgpt::data
