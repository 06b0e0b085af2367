#include "util/utf8.hpp"

namespace medgpt::util {

namespace {
// Length of the longest valid prefix of a sequence starting at s[i] (1..4), and whether it is
// complete; follows the Unicode "maximal subpart" rule used by from_utf8_lossy.
struct Seq {
  std::size_t len;
  bool ok;
  char32_t cp;
  bool truncated = false;  // a valid prefix cut off by the end of the input
};

Seq scan(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {1, true, b0};
  std::size_t need;
  char32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {1, false, 0xFFFD};
  }
  std::size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) return {k, false, 0xFFFD, true};
    const auto b = static_cast<unsigned char>(s[i + k]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return {k, false, 0xFFFD};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {need + 1, true, cp};
}
}  // namespace

char32_t utf8_decode(std::string_view s, std::size_t i, std::size_t& len) {
  const Seq q = scan(s, i);
  if (!q.ok) {
    len = 1;
    return 0xFFFD;
  }
  len = q.len;
  return q.cp;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool utf8_valid(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const Seq q = scan(s, i);
    if (!q.ok) return false;
    i += q.len;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const Seq q = scan(s, i);
    if (q.ok) {
      out.append(s.data() + i, q.len);
      i += q.len;
    } else {
      out += "\xEF\xBF\xBD";
      // q.len covers the maximal subpart; the offending byte (if any) starts the next scan.
      i += q.len;
    }
  }
  return out;
}

std::size_t utf8_incomplete_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  const std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<unsigned char>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation: keep looking for the lead
    if (b < 0x80) return 0;
    const Seq q = scan(s, n - back);
    // Incomplete only if every byte so far was valid and the sequence needs more.
    return q.truncated ? back : 0;
  }
  return 0;
}

}  // namespace medgpt::util
