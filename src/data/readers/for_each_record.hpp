// Walking the records of one input file, whatever its format: JSONL lines, the elements of a JSON
// array (.json), or .txt documents for pt (a line each, or blank-line separated paragraphs), which
// are handed over as {"text": ...}. Each record comes with `where` for its errors: "file:line", or
// "file:line (record k)" for an element of a JSON array (k counts from 1; line is where it starts,
// so a one-line array still tells its elements apart).
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "data/readers/kind.hpp"
#include "data/readers/record_file.hpp"
#include "util/error.hpp"

namespace medgpt::data {

using RecordFn = std::function<void(const nlohmann::json& record, const std::string& where)>;
// Receives a JSONL line that is not a JSON object (or not UTF-8) instead of the walk stopping.
using BadLineFn = std::function<void(const util::Error& error)>;

// Every record of the file, in order. Blank lines are skipped. Bad JSON, invalid UTF-8 (naming the
// field), a .txt file for a kind other than pt, and a file with no records ("FILE: no records")
// are util::Error. The record is not checked against the kind: parse_<kind> does that.
void for_each_record(const std::string& path, Kind kind, PtDocSep sep, const RecordFn& fn);

// The records that start at a byte offset in [begin, end) of file.bytes(), for splitting a file
// among MPI ranks: cut it anywhere, give each rank its range, and every record is read by exactly
// one rank (a blank-separated document that starts in a range is read to its end, past `end`).
// Line numbers are counted from the start of the file. Returns how many records were passed to fn.
// With on_bad, an unparsable JSONL line goes to it and the walk goes on (--skip-bad-records).
std::size_t for_each_record_in(const RecordFile& file, Kind kind, PtDocSep sep, std::size_t begin, std::size_t end,
                               const RecordFn& fn, const BadLineFn* on_bad = nullptr);

}  // namespace medgpt::data
