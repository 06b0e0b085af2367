// tokenizer.json "normalizer": Unicode normal forms through utf8proc (Qwen uses NFC, Llama-3 none).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace medgpt::data {

class Normalizer {
 public:
  enum class Form { None, NFC, NFD, NFKC, NFKD };

  Normalizer() = default;
  explicit Normalizer(Form f) : form_(f) {}
  // Reads null, {"type":"NFC"} (or NFD/NFKC/NFKD) or a Sequence of those; anything else is
  // refused with an error naming the type. `where` prefixes error messages.
  static Normalizer from_json(const nlohmann::json& j, const std::string& where);

  bool active() const { return form_ != Form::None; }
  Form form() const { return form_; }
  std::string apply(std::string_view s) const;
  nlohmann::ordered_json to_json() const;

 private:
  Form form_ = Form::None;
};

}  // namespace medgpt::data
