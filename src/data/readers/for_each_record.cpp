#include "data/readers/for_each_record.hpp"

#include <algorithm>
#include <cstdio>

#include "data/readers/fields.hpp"
#include "data/readers/record_line.hpp"
#include "util/error.hpp"

namespace medgpt::data {

namespace {

using json = nlohmann::json;

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

// The first line start at or after `pos`.
std::size_t line_start_from(std::string_view d, std::size_t pos) {
  if (pos == 0 || pos >= d.size()) return std::min(pos, d.size());
  if (d[pos - 1] == '\n') return pos;
  const auto nl = d.find('\n', pos);
  return nl == std::string_view::npos ? d.size() : nl + 1;
}

std::int64_t line_number_at(std::string_view d, std::size_t pos) {
  return 1 + static_cast<std::int64_t>(std::count(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
}

// The line starting at `pos` (without "\n" or "\r\n"); `next` is where the following one starts.
std::string_view line_at(std::string_view d, std::size_t pos, std::size_t& next) {
  auto nl = d.find('\n', pos);
  if (nl == std::string_view::npos) nl = d.size();
  next = nl + 1;
  std::string_view line = d.substr(pos, nl - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

void check_text_utf8(std::string_view line, const std::string& where) {
  const std::size_t bad = first_invalid_utf8(line);
  if (bad == std::string_view::npos) return;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(line[bad])));
  fields::fail(where, "text", std::string("invalid UTF-8 (byte ") + byte + " at column " + std::to_string(utf8_column(line, bad)) + ")",
               "save the file as UTF-8 (for a GBK file: iconv -f GBK -t UTF-8 in.txt > out.txt)");
}

// Calls record(text, where) for each non-blank line that starts in [begin, end).
template <class Fn>
std::size_t each_line(const RecordFile& f, std::size_t begin, std::size_t end, Fn&& record) {
  const std::string_view d = f.bytes();
  std::size_t pos = line_start_from(d, begin), n = 0;
  for (std::int64_t line = line_number_at(d, pos); pos < end && pos < d.size(); ++line) {
    std::size_t next;
    const std::string_view text = line_at(d, pos, next);
    pos = next;
    if (blank(text)) continue;
    record(text, util::at(f.path(), line));
    ++n;
  }
  return n;
}

std::size_t jsonl_records(const RecordFile& f, std::size_t begin, std::size_t end, const RecordFn& fn, const BadLineFn* on_bad) {
  return each_line(f, begin, end, [&](std::string_view text, const std::string& where) {
    nlohmann::json record;
    try {
      record = parse_record_line(text, where);
    } catch (const util::Error& e) {
      if (!on_bad) throw;
      (*on_bad)(e);  // one bad line of a JSONL file does not spoil the lines after it
      return;
    }
    fn(record, where);
  });
}

std::size_t text_lines(const RecordFile& f, std::size_t begin, std::size_t end, const RecordFn& fn) {
  return each_line(f, begin, end, [&](std::string_view text, const std::string& where) {
    check_text_utf8(text, where);
    fn(json{{"text", std::string(text)}}, where);
  });
}

// Paragraphs: runs of non-blank lines joined with "\n". A range that starts inside a paragraph
// leaves it to the range where the paragraph starts.
std::size_t text_paragraphs(const RecordFile& f, std::size_t begin, std::size_t end, const RecordFn& fn) {
  const std::string_view d = f.bytes();
  std::size_t pos = line_start_from(d, begin), n = 0;
  bool skipping = false;
  if (pos > 0 && pos < d.size()) {
    const std::size_t prev_end = pos - 1;  // the '\n' ending the previous line
    const auto nl = prev_end == 0 ? std::string_view::npos : d.rfind('\n', prev_end - 1);
    const std::size_t prev_start = nl == std::string_view::npos ? 0 : nl + 1;
    skipping = !blank(d.substr(prev_start, prev_end - prev_start));
  }
  std::string doc, doc_where;
  bool in_doc = false;
  auto emit = [&] {
    fn(json{{"text", doc}}, doc_where);
    ++n;
    doc.clear();
    in_doc = false;
  };
  for (std::int64_t line = line_number_at(d, pos); pos < d.size(); ++line) {
    const std::size_t start = pos;
    std::size_t next;
    const std::string_view text = line_at(d, pos, next);
    pos = next;
    if (blank(text)) {
      if (in_doc) emit();
      skipping = false;
      if (start >= end) break;
      continue;
    }
    if (skipping) continue;
    const std::string where = util::at(f.path(), line);
    if (!in_doc) {
      if (start >= end) break;
      in_doc = true;
      doc_where = where;
    } else {
      doc += '\n';
    }
    check_text_utf8(text, where);
    doc.append(text);
  }
  if (in_doc) emit();
  return n;
}

// The elements of a top-level JSON array, found by a scan that tracks strings and nesting (so
// each element is parsed, and its errors reported, on its own, with the line it starts on).
std::size_t json_array(const RecordFile& f, std::size_t begin, std::size_t end, const RecordFn& fn) {
  const std::string_view d = f.bytes();
  const std::string& path = f.path();
  std::size_t i = d.find('[') + 1, n = 0, k = 0;
  std::int64_t line = line_number_at(d, i);
  auto skip_ws = [&] {
    for (; i < d.size() && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n'); ++i)
      if (d[i] == '\n') ++line;
  };
  const char* const todo = "a .json file holds one JSON array of records [{...}, {...}] or one JSON object per line";
  skip_ws();
  if (i < d.size() && d[i] == ']') return 0;  // []
  for (;;) {
    skip_ws();
    const std::size_t start = i;
    const std::int64_t start_line = line;
    int depth = 0;
    bool in_string = false;
    for (; i < d.size(); ++i) {
      const char c = d[i];
      if (c == '\n') ++line;
      if (in_string) {
        if (c == '\\')
          ++i;
        else if (c == '"')
          in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
    }
    if (i >= d.size()) util::fail(util::at(path, start_line), "the JSON array is not closed (no ']' at the end)", todo);
    ++k;
    if (start >= end) break;
    if (start >= begin) {
      std::string_view text = d.substr(start, i - start);
      while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
        text.remove_suffix(1);
      const std::string where = util::at(path, start_line) + " (record " + std::to_string(k) + ")";
      if (text.empty()) util::fail(where, "empty array element (a stray comma?)", todo);
      fn(parse_record_line(text, where), where);
      ++n;
    }
    if (d[i++] == ']') {
      skip_ws();
      if (i < d.size()) util::fail(util::at(path, line), "text after the closing ']' of the JSON array", todo);
      break;
    }
  }
  return n;
}

}  // namespace

std::size_t for_each_record_in(const RecordFile& file, Kind kind, PtDocSep sep, std::size_t begin, std::size_t end,
                               const RecordFn& fn, const BadLineFn* on_bad) {
  end = std::min(end, file.bytes().size());
  switch (file.format()) {
    case FileFormat::Text:
      if (kind != Kind::Pt)
        util::fail(file.path(), std::string("a .txt file holds plain text, which only --kind pt reads"),
                   std::string("give ") + to_string(kind) + " data as .jsonl (one JSON object per line) or .json");
      return sep == PtDocSep::Line ? text_lines(file, begin, end, fn) : text_paragraphs(file, begin, end, fn);
    case FileFormat::JsonArray:
      return json_array(file, begin, end, fn);
    case FileFormat::JsonLines:
      break;
  }
  return jsonl_records(file, begin, end, fn, on_bad);
}

void for_each_record(const std::string& path, Kind kind, PtDocSep sep, const RecordFn& fn) {
  const RecordFile file(path);
  if (for_each_record_in(file, kind, sep, 0, file.bytes().size(), fn) == 0)
    util::fail(path, "no records", "the file is empty or holds only blank lines: fill it or leave it out of --input");
}

}  // namespace medgpt::data
