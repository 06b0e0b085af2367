// serve's request bodies: the first byte picks the schema (even: chat, odd: completion), the rest is
// the body. A body is accepted or refused with an ApiError of status 400; an accepted one must
// satisfy what the model thread relies on: prompt + max_tokens within the context, sampling options
// in range, at most 4 non-empty stop strings.
#include <algorithm>

#include "common.hpp"
#include "serve/request.hpp"

using namespace medgpt;

namespace {

const serve::RequestContext& context() {
  static const data::Tokenizer tok = data::Tokenizer::load(std::string(MEDGPT_SOURCE_DIR) + "/inputs/tokenizer");
  static const serve::RequestContext ctx = [] {
    infer::GenerationOptions d;
    d.max_new_tokens = 16;
    data::RenderOptions r;
    r.add_generation_prompt = true;
    return serve::RequestContext{tok, data::ChatTemplate::get("qwen"), r, d, /*context=*/96};
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const serve::RequestContext& ctx = context();
  try {
    const serve::Request r = serve::parse_request(fuzz::as_text(data + 1, size - 1), data[0] % 2 == 0, ctx);
    const auto& s = r.options.sampling;
    const auto n = static_cast<std::int64_t>(r.prompt.size());
    const bool ok = n >= 1 && r.options.max_new_tokens >= 1 && n + r.options.max_new_tokens <= ctx.context && s.temperature >= 0 &&
                    s.temperature <= 2 && s.top_p > 0 && s.top_p <= 1 && s.top_k >= 0 && s.repetition_penalty > 0 && r.stop.size() <= 4 &&
                    std::none_of(r.stop.begin(), r.stop.end(), [](const std::string& x) { return x.empty(); });
    if (!ok) __builtin_trap();
  } catch (const serve::ApiError& e) {
    if (e.status != 400 || e.type != "invalid_request_error" || e.message.empty()) __builtin_trap();
  }
  return 0;
}
