// Minimal UTF-8 helpers the tokenizer needs on its hot path (decoding code points, lossy repair,
// finding where an incomplete trailing sequence starts). Heavier Unicode work goes to utf8proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace medgpt::util {

// Decodes the code point at s[i]; sets len to its byte length. Invalid bytes decode as
// U+FFFD with len 1 (the caller decides whether that is an error).
char32_t utf8_decode(std::string_view s, std::size_t i, std::size_t& len);

void utf8_append(std::string& out, char32_t cp);

// True when s is well-formed UTF-8 (no surrogates, no overlongs).
bool utf8_valid(std::string_view s);

// Replaces each maximal invalid subsequence with U+FFFD, as Rust's String::from_utf8_lossy does.
std::string utf8_lossy(std::string_view s);

// Length of a trailing prefix of a UTF-8 sequence that is still incomplete (0 when s ends on a
// boundary or with bytes that can never complete): streaming decode holds those bytes back.
std::size_t utf8_incomplete_tail(std::string_view s);

}  // namespace medgpt::util
