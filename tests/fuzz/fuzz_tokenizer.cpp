// The tokenizer: the first byte picks what the rest is.
//   0: text, encoded by the bundled tokenizer (inputs/tokenizer) and decoded back; a well-formed
//      UTF-8 text that NFC leaves as it is must come back byte for byte;
//   1: ids (4 bytes each, little-endian, some past the vocabulary), decoded with and without special tokens;
//   2: a tokenizer.json, loaded (refused with one line, or usable: it then encodes and decodes a text).
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common.hpp"
#include "data/readers/record_line.hpp"
#include "data/tokenizer/tokenizer.hpp"

using namespace medgpt;

namespace {

const data::Tokenizer& bundled() {
  static const data::Tokenizer t = data::Tokenizer::load(std::string(MEDGPT_SOURCE_DIR) + "/inputs/tokenizer");
  return t;
}

std::string scratch_file() {
  static const std::string dir = [] {
    const std::string d = (std::filesystem::temp_directory_path() / ("medgpt-fuzz-" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir + "/tokenizer.json";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      const auto ids = bundled().encode(rest);
      const std::string back = bundled().decode(ids, false, false);
      // Byte-level BPE is lossless on valid UTF-8 that its NFC normalizer leaves as it is.
      if (data::first_invalid_utf8(rest) == std::string_view::npos && bundled().normalizer().apply(rest) == rest && back != rest)
        __builtin_trap();
      break;
    }
    case 1: {
      std::vector<data::TokenId> ids;
      for (std::size_t i = 0; i + 4 <= rest.size(); i += 4) {
        std::uint32_t v;
        std::memcpy(&v, rest.data() + i, 4);
        ids.push_back(static_cast<data::TokenId>(v % (bundled().size() + 16)));
      }
      bundled().decode(ids, false);
      bundled().decode(ids, true);
      for (const data::TokenId id : ids) bundled().token_bytes(id);
      break;
    }
    default: {
      const std::string path = scratch_file();
      std::ofstream(path, std::ios::binary | std::ios::trunc).write(rest.data(), static_cast<std::streamsize>(rest.size()));
      fuzz::refusal_ok([&] {
        const data::Tokenizer t = data::Tokenizer::load(path);
        t.decode(t.encode("高血压 hypertension 123 <|im_end|>", true), true);
      });
    }
  }
  return 0;
}
