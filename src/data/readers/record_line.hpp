// One JSON record (a JSONL line, or one element of a .json array) parsed with an error that says
// where and what: invalid JSON gives the position; invalid UTF-8 names the field that holds it
// (Chinese corpora saved as GBK are the usual cause), e.g. "f.jsonl:7: conversations[1].value:
// invalid UTF-8 ...". `medgpt prepare` splits files by byte ranges and calls this per line.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace medgpt::data {

// Parses `text` (a JSONL line without its newline, or one array element); `where` is "file:line".
// The result is a JSON object; anything else (invalid JSON, invalid UTF-8, a non-object) throws
// util::Error naming `where` and, where it can, the field.
nlohmann::json parse_record_line(std::string_view text, const std::string& where);

// 1-based column of byte `pos` of a line, in characters (UTF-8 continuation bytes do not count),
// as editors show it for Chinese text.
std::size_t utf8_column(std::string_view line, std::size_t pos);

// Byte offset of the first byte of `s` that is not part of well-formed UTF-8, or npos.
std::size_t first_invalid_utf8(std::string_view s);

}  // namespace medgpt::data
