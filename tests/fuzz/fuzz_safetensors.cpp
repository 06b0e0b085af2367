// The safetensors header (model/safetensors_header): any bytes are a file; it is accepted only when
// its entries exactly cover the data that follows, and then every entry's range lies in the file.
#include "common.hpp"
#include "model/safetensors_header.hpp"

using namespace medgpt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::refusal_ok([&] {
    const model::SafetensorsHeader h = model::parse_safetensors_header(fuzz::as_text(data, size), "fuzz.safetensors");
    for (const model::SafetensorsEntry& e : h.entries)
      if (e.begin > e.end || h.data_start + e.end > size) __builtin_trap();
  });
  return 0;
}
