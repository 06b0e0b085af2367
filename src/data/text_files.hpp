// Plain-text corpora for tokenizer work: expands files and folders (*.txt, *.jsonl, *.json, sorted)
// and yields each document's text: a .txt line, or a JSONL line's "text" field.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace medgpt::data {

// Files named directly, plus the matching files under each folder (recursively), sorted;
// util::Error if a path does not exist or a folder holds no text file.
std::vector<std::string> expand_text_inputs(const std::vector<std::string>& inputs);

// Calls fn(text, where) for every non-blank document of `path` ("file:line" in where): a .txt line,
// or the "text" of a JSONL/JSON record (data/readers, kind pt); a bad record is a util::Error.
void for_each_text(const std::string& path, const std::function<void(std::string_view, const std::string&)>& fn);

// Total size in bytes of the files.
std::size_t total_bytes(const std::vector<std::string>& files);

}  // namespace medgpt::data
