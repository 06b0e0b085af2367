// tokenizer.json "pre_tokenizer": regex Split stages (behavior Isolated) followed by ByteLevel,
// the shape used by Qwen2/2.5/3 and Llama-3 (and GPT-2 through ByteLevel's own regex).
// The regex runs on PCRE2 (JIT) with Unicode properties; `\s`/`\S` are rewritten to the exact
// Unicode White_Space set that the Rust reference (Oniguruma) uses.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace medgpt::data {

// The Qwen2/2.5/3 pattern; Llama-3 differs only in \p{N}{1,3}.
extern const char* const kQwenSplitPattern;
extern const char* const kGpt2Pattern;

class RegexSplit {
 public:
  explicit RegexSplit(std::string pattern, const std::string& where = "pre_tokenizer");
  ~RegexSplit();
  RegexSplit(const RegexSplit&) = delete;
  RegexSplit& operator=(const RegexSplit&) = delete;

  const std::string& pattern() const { return pattern_; }
  // Appends the pieces of s: every match, and every non-empty gap between matches ("Isolated").
  void split(std::string_view s, std::vector<std::string_view>& out) const;

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8
  bool jit_ = false;
};

class PreTokenizer {
 public:
  static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json& j, const std::string& where);
  // Split(pattern, Isolated) + ByteLevel(add_prefix_space=false, use_regex=false).
  static std::unique_ptr<PreTokenizer> with_pattern(const std::string& pattern);

  std::unique_ptr<PreTokenizer> clone() const;
  // Pieces of s, each to be byte-level mapped and BPE-encoded on its own.
  void split(std::string_view s, std::vector<std::string_view>& out) const;
  nlohmann::ordered_json to_json() const;

 private:
  std::vector<std::unique_ptr<RegexSplit>> stages_;
  bool byte_level_use_regex_ = false;  // remembered for to_json
};

}  // namespace medgpt::data
