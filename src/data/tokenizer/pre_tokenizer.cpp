#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/tokenizer/pre_tokenizer.hpp"

#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace medgpt::data {

const char* const kQwenSplitPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

// Unicode White_Space, which Oniguruma's \s matches; PCRE2's \s differs on U+180E (and by version).
const char* const kWhiteSpace =
    "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

std::string rewrite_whitespace(const std::string& p) {
  std::string out;
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      if (n == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

std::string escape_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// Per-thread match scratch: PCRE2 match data per pattern plus one JIT stack large enough for long
// whitespace runs (`\s+(?!\S)` backtracks), reused across calls to keep allocation off the hot path.
struct Scratch {
  std::vector<std::pair<const pcre2_code*, pcre2_match_data*>> md;
  pcre2_match_context* mc = nullptr;
  pcre2_jit_stack* js = nullptr;
  ~Scratch() {
    for (auto& [code, m] : md) pcre2_match_data_free(m);
    if (mc) pcre2_match_context_free(mc);
    if (js) pcre2_jit_stack_free(js);
  }
};

thread_local Scratch tls_scratch;

pcre2_match_data* match_data_for(const pcre2_code* code) {
  Scratch& s = tls_scratch;
  for (auto& [c, m] : s.md)
    if (c == code) return m;
  if (!s.mc) {
    s.mc = pcre2_match_context_create(nullptr);
    s.js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(s.mc, nullptr, s.js);
  }
  s.md.emplace_back(code, pcre2_match_data_create_from_pattern(code, nullptr));
  return s.md.back().second;
}

}  // namespace

RegexSplit::RegexSplit(std::string pattern, const std::string& where) : pattern_(std::move(pattern)) {
  const std::string compiled = rewrite_whitespace(pattern_);
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    util::fail(where, "pre_tokenizer: cannot compile regex at offset " + std::to_string(off) + ": " +
                          reinterpret_cast<const char*>(buf),
               "check the Split pattern in tokenizer.json");
  }
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  code_ = code;
}

RegexSplit::~RegexSplit() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void RegexSplit::split(std::string_view s, std::vector<std::string_view>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = match_data_for(code);
  pcre2_match_context* mc = tls_scratch.mc;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  std::size_t pos = 0, last = 0;
  while (pos < s.size()) {
    const int rc = jit_ ? pcre2_jit_match(code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, mc)
                        : pcre2_match(code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, mc);
    if (rc < 0) break;  // no further match: the rest is a gap
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const std::size_t b = ov[0], e = ov[1];
    if (b > last) out.emplace_back(s.substr(last, b - last));
    if (e > b) {
      out.emplace_back(s.substr(b, e - b));
      pos = last = e;
    } else {
      // An empty match: step over one character so the scan always advances.
      pos = b + 1;
      while (pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) ++pos;
      last = b;
    }
  }
  if (last < s.size()) out.emplace_back(s.substr(last));
}

std::unique_ptr<PreTokenizer> PreTokenizer::with_pattern(const std::string& pattern) {
  auto p = std::make_unique<PreTokenizer>();
  p->stages_.push_back(std::make_unique<RegexSplit>(pattern));
  return p;
}

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& j, const std::string& where) {
  auto p = std::make_unique<PreTokenizer>();
  std::vector<nlohmann::json> parts;
  if (j.is_object() && j.value("type", "") == "Sequence") {
    for (const auto& x : j.at("pretokenizers")) parts.push_back(x);
  } else if (!j.is_null()) {
    parts.push_back(j);
  }
  bool byte_level = false;
  for (const auto& x : parts) {
    const std::string type = x.value("type", "");
    if (byte_level)
      util::fail(where, "pre_tokenizer: \"" + type + "\" after ByteLevel is not supported",
                 "medgpt supports Split stages followed by one ByteLevel");
    if (type == "Split") {
      const auto& pat = x.at("pattern");
      std::string regex;
      if (pat.contains("Regex")) regex = pat.at("Regex").get<std::string>();
      else if (pat.contains("String")) regex = escape_literal(pat.at("String").get<std::string>());
      else util::fail(where, "pre_tokenizer: Split.pattern needs \"Regex\" or \"String\"", "fix tokenizer.json");
      const std::string behavior = x.value("behavior", "Isolated");
      if (behavior != "Isolated" || x.value("invert", false))
        util::fail(where, "pre_tokenizer: Split behavior \"" + behavior + "\" (invert " +
                              (x.value("invert", false) ? "true" : "false") + ") is not supported",
                   "medgpt supports behavior Isolated, invert false");
      p->stages_.push_back(std::make_unique<RegexSplit>(regex, where));
    } else if (type == "ByteLevel") {
      if (x.value("add_prefix_space", false))
        util::fail(where, "pre_tokenizer: ByteLevel add_prefix_space=true is not supported",
                   "set add_prefix_space to false (as Qwen and Llama-3 do)");
      if (x.value("use_regex", true)) {
        p->stages_.push_back(std::make_unique<RegexSplit>(kGpt2Pattern, where));
        p->byte_level_use_regex_ = true;
      }
      byte_level = true;
    } else {
      util::fail(where, "pre_tokenizer: unsupported type \"" + type + "\"",
                 "medgpt reads byte-level BPE tokenizers: Split + ByteLevel pre-tokenizers");
    }
  }
  if (!byte_level)
    util::fail(where, "pre_tokenizer: no ByteLevel stage", "medgpt reads byte-level BPE tokenizers (Qwen, Llama-3, GPT-2)");
  return p;
}

std::unique_ptr<PreTokenizer> PreTokenizer::clone() const {
  auto p = std::make_unique<PreTokenizer>();
  for (const auto& s : stages_) p->stages_.push_back(std::make_unique<RegexSplit>(s->pattern()));
  p->byte_level_use_regex_ = byte_level_use_regex_;
  return p;
}

void PreTokenizer::split(std::string_view s, std::vector<std::string_view>& out) const {
  if (stages_.empty()) {
    out.push_back(s);
    return;
  }
  const std::size_t start = out.size();
  stages_[0]->split(s, out);
  // Later stages re-split every piece of the earlier ones.
  std::vector<std::string_view> next;
  for (std::size_t k = 1; k < stages_.size(); ++k) {
    next.clear();
    for (std::size_t i = start; i < out.size(); ++i) stages_[k]->split(out[i], next);
    out.resize(start);
    out.insert(out.end(), next.begin(), next.end());
  }
}

nlohmann::ordered_json PreTokenizer::to_json() const {
  nlohmann::ordered_json seq = nlohmann::ordered_json::array();
  const std::size_t n_split = stages_.size() - (byte_level_use_regex_ ? 1 : 0);
  for (std::size_t k = 0; k < n_split; ++k)
    seq.push_back(nlohmann::ordered_json{{"type", "Split"},
                   {"pattern", {{"Regex", stages_[k]->pattern()}}},
                   {"behavior", "Isolated"},
                   {"invert", false}});
  seq.push_back(nlohmann::ordered_json{{"type", "ByteLevel"},
                 {"add_prefix_space", false},
                 {"trim_offsets", false},
                 {"use_regex", byte_level_use_regex_}});
  return nlohmann::ordered_json{{"type", "Sequence"}, {"pretokenizers", seq}};
}

}  // namespace medgpt::data
