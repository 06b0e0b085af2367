// Preference, KTO and RL-prompt samples -> token columns. The prompt is the conversation rendered
// with the generation cue (what the policy sees before it answers); a response is the text of the
// assistant span the template gives an answer (the answer and its end-of-turn marker), so
// prompt + response is what the model is trained to continue. Prompts longer than
// max_prompt_length keep their end (TRL's keep_end); responses are cut to fit max_length.
#pragma once

#include <string>
#include <vector>

#include "data/chat_template.hpp"
#include "data/tokenizer/tokenizer.hpp"

namespace medgpt::data {

struct PairEncodeOptions {
  std::size_t max_length = 0;         // prompt + response; 0: no limit
  std::size_t max_prompt_length = 0;  // 0: no limit
};

struct EncodedPrompt {
  std::vector<TokenId> ids;
  bool truncated = false;
};

EncodedPrompt encode_prompt(const Tokenizer& tok, const ChatTemplate& tmpl, const std::vector<ChatMessage>& prompt,
                            const PairEncodeOptions& opt);

// The tokens of `answer` as the template closes an assistant turn after `prompt`, cut so that
// prompt_tokens + response fits max_length.
EncodedPrompt encode_response(const Tokenizer& tok, const ChatTemplate& tmpl, const std::vector<ChatMessage>& prompt,
                              const std::string& answer, std::size_t prompt_tokens, const PairEncodeOptions& opt);

}  // namespace medgpt::data
