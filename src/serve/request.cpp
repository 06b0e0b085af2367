#include "serve/request.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace medgpt::serve {

using nlohmann::json;

json error_json(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return json{{"error", err}};
}

namespace {

ApiError bad(const std::string& param, const std::string& message) { return {400, "invalid_request_error", message, param, ""}; }

// An optional typed field: absent or null gives the fallback.
template <class T>
T field(const json& body, const char* key, T fallback, bool (json::*is)() const, const char* type) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!(body[key].*is)()) throw bad(key, std::string("'") + key + "' must be " + type);
  return body[key].get<T>();
}

std::vector<std::int64_t> chat_prompt(const json& body, const RequestContext& ctx) {
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    throw bad("messages", "'messages' must be a non-empty array");
  std::vector<data::ChatMessage> messages;
  for (std::size_t i = 0; i < body["messages"].size(); ++i) {
    const json& m = body["messages"][i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") || !m["content"].is_string())
      throw bad(where, where + " must be an object with string 'role' and 'content'");
    messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>(), ""});
  }
  std::string text;
  try {
    text = ctx.chat_template.render(messages, ctx.render).text;
  } catch (const util::Error& e) {
    throw bad("messages", e.what());
  }
  const auto ids = ctx.tokenizer.encode(text);
  return {ids.begin(), ids.end()};
}

std::vector<std::int64_t> completion_prompt(const json& body, const RequestContext& ctx) {
  json p = body.contains("prompt") ? body["prompt"] : json();
  if (p.is_array() && p.size() == 1) p = p[0];
  if (!p.is_string() || p.get<std::string>().empty()) throw bad("prompt", "'prompt' must be a non-empty string");
  const auto ids = ctx.tokenizer.encode(p.get<std::string>());
  return {ids.begin(), ids.end()};
}

void parse_sampling(const json& body, infer::GenerationOptions& o) {
  auto& s = o.sampling;
  if (body.contains("temperature") && !body["temperature"].is_null()) {
    s.temperature = field<double>(body, "temperature", 1.0, &json::is_number, "a number");
    if (!(s.temperature >= 0 && s.temperature <= 2)) throw bad("temperature", "'temperature' must be between 0 and 2");
    s.do_sample = s.temperature > 0;
  }
  s.top_p = field<double>(body, "top_p", s.top_p, &json::is_number, "a number");
  if (!(s.top_p > 0 && s.top_p <= 1)) throw bad("top_p", "'top_p' must be in (0, 1]");
  s.top_k = field<std::int64_t>(body, "top_k", s.top_k, &json::is_number_integer, "an integer");
  if (s.top_k < 0) throw bad("top_k", "'top_k' must be 0 (off) or more");
  s.repetition_penalty = field<double>(body, "repetition_penalty", s.repetition_penalty, &json::is_number, "a number");
  if (!(s.repetition_penalty > 0)) throw bad("repetition_penalty", "'repetition_penalty' must be positive (1: off)");
  if (body.contains("seed") && body["seed"].is_number_integer() && !body["seed"].is_number_unsigned() && body["seed"].get<std::int64_t>() < 0)
    throw bad("seed", "'seed' must not be negative");
  o.seed = field<std::uint64_t>(body, "seed", o.seed, &json::is_number_integer, "an integer");
}

// max_tokens (or its newer name max_completion_tokens): at least 1, and prompt + it within the context.
void parse_length(const json& body, std::int64_t prompt_tokens, const RequestContext& ctx, infer::GenerationOptions& o) {
  const std::int64_t n = prompt_tokens;
  if (n >= ctx.context)
    throw ApiError{400, "invalid_request_error", "the prompt has " + std::to_string(n) + " tokens; the context is " + std::to_string(ctx.context),
                   "messages", "context_length_exceeded"};
  const char* key = body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  o.max_new_tokens = field<std::int64_t>(body, key, std::min(ctx.defaults.max_new_tokens, ctx.context - n), &json::is_number_integer, "an integer");
  if (o.max_new_tokens < 1) throw bad(key, std::string("'") + key + "' must be at least 1");
  if (o.max_new_tokens > ctx.context - n)
    throw ApiError{400, "invalid_request_error",
                   "prompt (" + std::to_string(n) + ") + " + key + " (" + std::to_string(o.max_new_tokens) + ") exceed the context of " +
                       std::to_string(ctx.context) + " tokens",
                   key, "context_length_exceeded"};
}

std::vector<std::string> parse_stop(const json& body) {
  std::vector<std::string> stop;
  if (!body.contains("stop") || body["stop"].is_null()) return stop;
  const json& st = body["stop"];
  if (st.is_string()) stop.push_back(st.get<std::string>());
  else if (st.is_array() && st.size() <= 4 && std::all_of(st.begin(), st.end(), [](const json& x) { return x.is_string(); }))
    for (const auto& x : st) stop.push_back(x.get<std::string>());
  else throw bad("stop", "'stop' must be a string or an array of up to 4 strings");
  stop.erase(std::remove(stop.begin(), stop.end(), std::string()), stop.end());
  return stop;
}

}  // namespace

Request parse_request(std::string_view text, bool chat, const RequestContext& ctx) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception&) {
    throw bad("", "could not parse the body as JSON");
  }
  if (!body.is_object()) throw bad("", "the body must be a JSON object");
  try {
    Request r;
    r.options = ctx.defaults;
    if (body.contains("n") && !(body["n"].is_number_integer() && body["n"].get<std::int64_t>() == 1)) throw bad("n", "only n = 1 is supported");
    r.stream = field<bool>(body, "stream", false, &json::is_boolean, "a boolean");
    parse_sampling(body, r.options);
    r.stop = parse_stop(body);
    r.prompt = chat ? chat_prompt(body, ctx) : completion_prompt(body, ctx);
    parse_length(body, static_cast<std::int64_t>(r.prompt.size()), ctx, r.options);
    return r;
  } catch (const json::exception& e) {  // a value json cannot convert (e.g. a number past int64)
    throw bad("", std::string("a field has a value out of range: ") + e.what());
  }
}

}  // namespace medgpt::serve
