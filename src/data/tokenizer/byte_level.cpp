#include "data/tokenizer/byte_level.hpp"

#include "util/utf8.hpp"

namespace medgpt::data {

ByteLevel::ByteLevel() {
  byte_of_cp_.fill(-1);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(0x100 + n++);
    util::utf8_append(char_of_[b], cp);
    byte_of_cp_[cp] = b;
  }
}

const ByteLevel& ByteLevel::get() {
  static const ByteLevel instance;
  return instance;
}

std::string ByteLevel::encode(std::string_view raw) const {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) out += char_of_[b];
  return out;
}

std::optional<std::string> ByteLevel::decode(std::string_view s) const {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len;
    const char32_t cp = util::utf8_decode(s, i, len);
    if (cp >= byte_of_cp_.size() || byte_of_cp_[cp] < 0) return std::nullopt;
    out += static_cast<char>(byte_of_cp_[cp]);
    i += len;
  }
  return out;
}

}  // namespace medgpt::data
