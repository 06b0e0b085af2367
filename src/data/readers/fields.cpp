#include "data/readers/fields.hpp"

#include "util/error.hpp"

namespace medgpt::data::fields {

std::string type_name(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "true/false";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::array: return "a list";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: return "a number";
    default: return "an unsupported JSON value";
  }
}

std::string index(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string member(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

void fail(const std::string& where, const std::string& field, const std::string& what, const std::string& todo) {
  util::fail(field.empty() ? where : where + ": " + field, what, todo);
}

const nlohmann::json* find(const nlohmann::json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

void require_object(const nlohmann::json& j, const std::string& where, const std::string& todo) {
  if (!j.is_object()) fail(where, "", "the record is " + type_name(j) + ", not a JSON object", todo);
}

const std::string& expect_string(const nlohmann::json& v, const std::string& where, const std::string& path,
                                 const std::string& todo) {
  if (!v.is_string()) fail(where, path, "expected a string, got " + type_name(v), todo);
  return v.get_ref<const std::string&>();
}

const std::string& require_string(const nlohmann::json& obj, const std::string& key, const std::string& where,
                                  const std::string& path, const std::string& todo) {
  const nlohmann::json* v = find(obj, key);
  if (!v) fail(where, path, obj.is_object() && obj.contains(key) ? "is null" : "missing", todo);
  return expect_string(*v, where, path, todo);
}

std::optional<std::string> optional_string(const nlohmann::json& obj, const std::string& key,
                                           const std::string& where, const std::string& path,
                                           const std::string& todo) {
  const nlohmann::json* v = find(obj, key);
  if (!v) return std::nullopt;
  return expect_string(*v, where, path, todo);
}

}  // namespace medgpt::data::fields
