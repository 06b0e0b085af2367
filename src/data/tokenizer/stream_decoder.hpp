// Streaming decode for token-by-token output: text is released only up to the last complete
// UTF-8 character, so a character split over several byte tokens is never shown half-formed.
#pragma once

#include <string>

#include "data/tokenizer/tokenizer.hpp"

namespace medgpt::data {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special_tokens = false) : tok_(tok), skip_(skip_special_tokens) {}
  // The text that became complete with this token (possibly empty).
  std::string push(TokenId id);
  // What is left (an unfinished character comes out as U+FFFD, as a full decode would show it).
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_;
  std::string pending_;
};

}  // namespace medgpt::data
