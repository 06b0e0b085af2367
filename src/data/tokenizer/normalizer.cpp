#include "data/tokenizer/normalizer.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace medgpt::data {

namespace {
Normalizer::Form form_of(const std::string& type) {
  if (type == "NFC") return Normalizer::Form::NFC;
  if (type == "NFD") return Normalizer::Form::NFD;
  if (type == "NFKC") return Normalizer::Form::NFKC;
  if (type == "NFKD") return Normalizer::Form::NFKD;
  return Normalizer::Form::None;
}
const char* name_of(Normalizer::Form f) {
  switch (f) {
    case Normalizer::Form::NFC: return "NFC";
    case Normalizer::Form::NFD: return "NFD";
    case Normalizer::Form::NFKC: return "NFKC";
    case Normalizer::Form::NFKD: return "NFKD";
    default: return "";
  }
}
}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return {};
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    Normalizer out;
    for (const auto& n : j.at("normalizers")) {
      const Normalizer inner = from_json(n, where);
      if (inner.active() && out.active())
        util::fail(where, "normalizer: a Sequence of several normal forms is not supported",
                   "use a tokenizer.json with one normal form");
      if (inner.active()) out = inner;
    }
    return out;
  }
  const Form f = form_of(type);
  if (f == Form::None)
    util::fail(where, "normalizer: unsupported type \"" + type + "\"",
               "medgpt supports null, NFC, NFD, NFKC, NFKD (byte-level BPE tokenizers such as Qwen and Llama-3)");
  return Normalizer(f);
}

std::string Normalizer::apply(std::string_view s) const {
  if (form_ == Form::None) return std::string(s);
  // Normal forms leave ASCII unchanged: skip the library call on the common case.
  bool ascii = true;
  for (unsigned char c : s)
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) return std::string(s);
  int opts = UTF8PROC_STABLE;
  switch (form_) {
    case Form::NFC: opts |= UTF8PROC_COMPOSE; break;
    case Form::NFD: opts |= UTF8PROC_DECOMPOSE; break;
    case Form::NFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case Form::NFKD: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    default: break;
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &out,
                                          static_cast<utf8proc_option_t>(opts));
  if (n < 0) return std::string(s);  // invalid UTF-8 cannot reach here (inputs are validated)
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> guard(out, &std::free);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

nlohmann::ordered_json Normalizer::to_json() const {
  if (form_ == Form::None) return nullptr;
  return nlohmann::ordered_json{{"type", name_of(form_)}};
}

}  // namespace medgpt::data
