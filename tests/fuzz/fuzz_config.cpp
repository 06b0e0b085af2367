// A model's config.json (model/config): any JSON object is accepted as a Llama/Qwen2/Qwen3 config
// or refused with one line naming the field.
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "model/config.hpp"

using namespace medgpt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json j = nlohmann::json::parse(fuzz::as_text(data, size), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  fuzz::refusal_ok([&] {
    const model::ModelConfig c = model::ModelConfig::from_json(j, "fuzz/config.json");
    c.num_parameters();
  });
  return 0;
}
