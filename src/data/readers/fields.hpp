// Reading fields of one JSON record with errors that name the record and the field:
// "FILE:LINE: conversations[2].value: expected a string, got a number; <what to do>".
// Every reader goes through these so that missing fields and wrong types read the same everywhere.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace medgpt::data::fields {

// "a string", "a number", "a list", "an object", "true/false", "null" (for messages).
std::string type_name(const nlohmann::json& j);

// "conversations" + "[2]" -> "conversations[2]"; "conversations[2]" + "value" -> "conversations[2].value".
std::string index(const std::string& path, std::size_t i);
std::string member(const std::string& path, const std::string& key);

// Throws util::Error "<where>: <field>: <what>; <todo>" (no field part when field is empty).
[[noreturn]] void fail(const std::string& where, const std::string& field, const std::string& what,
                       const std::string& todo);

// obj[key] when it is present and not null, else nullptr. Hugging Face datasets fill columns a
// record lacks with null, so null means "not given" everywhere.
const nlohmann::json* find(const nlohmann::json& obj, const std::string& key);

// The record must be a JSON object.
void require_object(const nlohmann::json& j, const std::string& where, const std::string& todo);

// obj[key] as a string: missing (or null) and non-string values are errors naming `path`.
const std::string& require_string(const nlohmann::json& obj, const std::string& key, const std::string& where,
                                  const std::string& path, const std::string& todo);
// The same for a value already looked up (list elements).
const std::string& expect_string(const nlohmann::json& v, const std::string& where, const std::string& path,
                                 const std::string& todo);
// obj[key] as a string when present and not null; a non-string value is an error.
std::optional<std::string> optional_string(const nlohmann::json& obj, const std::string& key,
                                           const std::string& where, const std::string& path,
                                           const std::string& todo);

}  // namespace medgpt::data::fields
