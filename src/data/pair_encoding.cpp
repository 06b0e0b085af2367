#include "data/pair_encoding.hpp"

#include "util/error.hpp"

namespace medgpt::data {

EncodedPrompt encode_prompt(const Tokenizer& tok, const ChatTemplate& tmpl, const std::vector<ChatMessage>& prompt,
                            const PairEncodeOptions& opt) {
  RenderOptions ro;
  ro.add_generation_prompt = true;
  EncodedPrompt p;
  p.ids = tok.encode(tmpl.render(prompt, ro).text, /*add_special_tokens=*/false);
  if (opt.max_prompt_length > 0 && p.ids.size() > opt.max_prompt_length) {
    p.ids.erase(p.ids.begin(), p.ids.end() - static_cast<std::ptrdiff_t>(opt.max_prompt_length));
    p.truncated = true;
  }
  return p;
}

EncodedPrompt encode_response(const Tokenizer& tok, const ChatTemplate& tmpl, const std::vector<ChatMessage>& prompt,
                              const std::string& answer, std::size_t prompt_tokens, const PairEncodeOptions& opt) {
  std::vector<ChatMessage> full = prompt;
  full.push_back({"assistant", answer, ""});
  const RenderedChat chat = tmpl.render(full);
  if (chat.assistant_spans.empty()) util::fail("template " + tmpl.name(), "rendered no assistant span", "report this template");
  const auto [b, e] = chat.assistant_spans.back();
  EncodedPrompt r;
  r.ids = tok.encode(std::string_view(chat.text).substr(b, e - b), /*add_special_tokens=*/false);
  if (opt.max_length > 0 && prompt_tokens + r.ids.size() > opt.max_length) {
    r.ids.resize(opt.max_length > prompt_tokens ? opt.max_length - prompt_tokens : 0);
    r.truncated = true;
  }
  return r;
}

}  // namespace medgpt::data
