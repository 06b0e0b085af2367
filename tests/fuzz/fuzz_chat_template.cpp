// Chat-template rendering of arbitrary message lists (roles, contents, reasoning, order) with every
// template, with and without the generation prompt: the input is a JSON array of
// {"role", "content", "reasoning_content"?} objects, or raw bytes taken as one user message.
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "data/chat_template.hpp"

using namespace medgpt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<data::ChatMessage> messages;
  const nlohmann::json j = nlohmann::json::parse(fuzz::as_text(data, size), nullptr, /*allow_exceptions=*/false);
  if (j.is_array()) {
    for (const auto& m : j) {
      if (!m.is_object()) continue;
      data::ChatMessage c;
      if (m.contains("role") && m["role"].is_string()) c.role = m["role"].get<std::string>();
      if (m.contains("content") && m["content"].is_string()) c.content = m["content"].get<std::string>();
      if (m.contains("reasoning_content") && m["reasoning_content"].is_string()) c.reasoning_content = m["reasoning_content"].get<std::string>();
      messages.push_back(std::move(c));
    }
  } else {
    messages.push_back({"user", std::string(fuzz::as_text(data, size)), ""});
  }
  for (const std::string& name : data::ChatTemplate::names())
    for (const bool cue : {false, true}) {
      data::RenderOptions o;
      o.add_generation_prompt = cue;
      fuzz::refusal_ok([&] { data::ChatTemplate::get(name).render(messages, o); });
    }
  return 0;
}
