// Reading whole files and JSON documents with errors that name the file and line.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace medgpt::util {

// The file's bytes; util::Error naming the path if it cannot be read.
std::string read_file(const std::string& path);
// Parses `text` (read from `path`); a syntax error names path:line.
nlohmann::json parse_json(const std::string& text, const std::string& path);
nlohmann::json read_json_file(const std::string& path);
// 1-based line of byte offset `pos` in text.
std::size_t line_of(const std::string& text, std::size_t pos);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

}  // namespace medgpt::util
