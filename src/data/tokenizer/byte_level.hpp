// GPT-2's byte <-> unicode mapping (bytes_to_unicode), used by byte-level BPE: every byte gets a
// printable code point so that vocabulary entries are valid strings.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace medgpt::data {

class ByteLevel {
 public:
  static const ByteLevel& get();

  // The code point that stands for byte b, as UTF-8.
  const std::string& char_of(unsigned char b) const { return char_of_[b]; }
  // Maps every byte of raw to its character: "Hello world" -> "HelloĠworld".
  std::string encode(std::string_view raw) const;
  // The inverse; nullopt when s holds a character outside the 256-entry alphabet.
  std::optional<std::string> decode(std::string_view s) const;

 private:
  ByteLevel();
  std::array<std::string, 256> char_of_;
  std::array<int, 0x180> byte_of_cp_;  // code point (< 0x180) -> byte, or -1
};

}  // namespace medgpt::data
