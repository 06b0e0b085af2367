#include "data/readers/record_line.hpp"

#include <cstdio>
#include <vector>

#include "data/readers/fields.hpp"
#include "util/error.hpp"
#include "util/utf8.hpp"

namespace medgpt::data {

namespace {

using json = nlohmann::json;

const char* const kLineTodo =
    "each line of a .jsonl file must be one complete JSON object (a .json file may instead hold one JSON "
    "array of objects)";

// Follows a SAX parse and keeps the path of the value being read ("conversations[1].value"), so that
// when the parser stops on a bad byte we can say which field it was in. Only run after a failed
// parse: the fast path is the DOM parser.
class PathTracker : public nlohmann::json_sax<json> {
 public:
  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    frames_.push_back({false, {}, 0, false});
    return true;
  }
  bool key(string_t& k) override {
    frames_.back().key = k;
    frames_.back().has_key = true;
    return true;
  }
  bool end_object() override {
    frames_.pop_back();
    return value();
  }
  bool start_array(std::size_t) override {
    frames_.push_back({true, {}, 0, false});
    return true;
  }
  bool end_array() override {
    frames_.pop_back();
    return value();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

  // The field being read when the parse stopped; " (a key)" when it stopped inside an object key.
  std::string path() const {
    std::string p;
    for (std::size_t i = 0; i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.array) {
        p = fields::index(p, f.count);
      } else if (f.has_key) {
        p = fields::member(p, f.key);
      } else if (i + 1 == frames_.size()) {
        p += p.empty() ? "a key" : " (a key)";
      }
    }
    return p;
  }

 private:
  struct Frame {
    bool array;
    std::string key;
    std::size_t count;  // finished elements of an array: the index of the one being read
    bool has_key;
  };
  // A value ended: the enclosing array moves on to its next element, an object waits for a key.
  bool value() {
    if (!frames_.empty()) {
      if (frames_.back().array)
        ++frames_.back().count;
      else
        frames_.back().has_key = false;
    }
    return true;
  }
  std::vector<Frame> frames_;
};

// "column 12" on a one-line record, "line 3, column 4 of the record" on a multi-line one.
std::string position(std::string_view text, std::size_t pos) {
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < pos && i < text.size(); ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  const std::size_t col = utf8_column(text.substr(line_start), pos - line_start);
  if (line == 1 && text.find('\n') == std::string_view::npos) return "column " + std::to_string(col);
  return "line " + std::to_string(line) + ", column " + std::to_string(col) + " of the record";
}

// nlohmann's message without its "[json.exception...] parse error at line 1, column 5: " prefix,
// made printable and kept short (it quotes what it last read, which can be a whole line).
std::string parser_detail(const std::string& what) {
  std::string s = what;
  if (auto p = s.find("column "); p != std::string::npos)
    if (auto c = s.find(": ", p); c != std::string::npos) s = s.substr(c + 2);
  s = util::utf8_lossy(s);
  for (std::size_t p; (p = s.find("; ")) != std::string::npos;) s.replace(p, 2, ", ");  // ';' starts our hint
  for (auto& ch : s)
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
  if (s.size() > 160) s = s.substr(0, 157 - util::utf8_incomplete_tail(s.substr(0, 157))) + "...";
  return s;
}

}  // namespace

std::size_t utf8_column(std::string_view line, std::size_t pos) {
  std::size_t col = 1;
  for (std::size_t i = 0; i < pos && i < line.size(); ++i)
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80) ++col;
  return col;
}

std::size_t first_invalid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 0;
    const char32_t cp = util::utf8_decode(s, i, len);
    if (cp == 0xFFFD && len == 1) return i;  // a real U+FFFD is 3 bytes long
    i += len;
  }
  return std::string_view::npos;
}

json parse_record_line(std::string_view text, const std::string& where) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    const std::size_t err = e.byte > 0 ? e.byte - 1 : 0;  // e.byte is 1-based, just past the culprit
    const std::size_t bad = first_invalid_utf8(text);
    if (bad != std::string_view::npos && bad <= err) {
      PathTracker tracker;
      json::sax_parse(text.begin(), text.end(), &tracker);
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[bad])));
      fields::fail(where, tracker.path(), std::string("invalid UTF-8 (byte ") + byte + " at " + position(text, bad) + ")",
                   "save the file as UTF-8 (for a GBK file: iconv -f GBK -t UTF-8 in.jsonl > out.jsonl)");
    }
    util::fail(where, "not valid JSON at " + position(text, err) + ": " + parser_detail(e.what()), kLineTodo);
  } catch (const json::exception& e) {  // valid syntax the parser still refuses: a number past a double's range
    util::fail(where, std::string("not valid JSON: ") + e.what(), kLineTodo);
  }
  if (!j.is_object()) util::fail(where, "the record is " + fields::type_name(j) + ", not a JSON object", kLineTodo);
  return j;
}

}  // namespace medgpt::data
