// The OpenAI request bodies `medgpt serve` accepts (/v1/chat/completions, /v1/completions), parsed
// and validated into a prompt and generation options. Every refusal is an ApiError: the HTTP status
// and the OpenAI error object the client gets. LibTorch-free (fuzzed by tests/fuzz/fuzz_serve_request).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/chat_template.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "infer/generation_options.hpp"

namespace medgpt::serve {

struct ApiError {
  int status;
  std::string type, message, param, code;
};

// {"error": {"message", "type", "param", "code"}} (param and code null when empty).
nlohmann::json error_json(const ApiError& e);

// What a request may not exceed, and what it starts from.
struct RequestContext {
  const data::Tokenizer& tokenizer;
  const data::ChatTemplate& chat_template;
  data::RenderOptions render;          // add_generation_prompt set; the server's --system
  infer::GenerationOptions defaults;   // the server's sampling options, EOS ids, max_new_tokens
  std::int64_t context = 0;            // the model's max_position_embeddings
};

struct Request {
  std::vector<std::int64_t> prompt;
  infer::GenerationOptions options;
  std::vector<std::string> stop;  // non-empty strings, at most 4
  bool stream = false;
};

// `body` is the raw request body; `chat` picks the chat or the completion schema. Throws ApiError
// (400 invalid_request_error, code context_length_exceeded where the prompt or max_tokens does not
// fit), never anything else for any input.
Request parse_request(std::string_view body, bool chat, const RequestContext& ctx);

}  // namespace medgpt::serve
