// One SFT conversation -> token ids and a loss mask: rendered with a chat template, tokenized
// piece by piece at the assistant spans (as MedicalGPT tokenizes prompt and answer separately), so
// the mask falls exactly on each assistant answer and its end-of-turn marker. Every assistant turn
// of a multi-turn conversation is trained, as MedicalGPT does.
#pragma once

#include <cstdint>
#include <vector>

#include "data/chat_template.hpp"
#include "data/readers/sft_reader.hpp"
#include "data/tokenizer/tokenizer.hpp"

namespace medgpt::data {

struct SftEncodeOptions {
  std::size_t max_length = 0;    // 0: no limit
  bool train_on_inputs = false;  // true: loss on every token
};

struct EncodedSample {
  std::vector<TokenId> ids;
  std::vector<std::uint8_t> mask;
  bool truncated = false;  // turns (or, for an over-long first turn, its tail) were cut
  bool empty = false;      // no token left to train on: the sample is dropped
};

// Over-long conversations keep their leading whole turns (up to the last assistant turn that ends
// within max_length); a first turn longer than max_length is cut at max_length.
EncodedSample encode_sft(const Tokenizer& tok, const ChatTemplate& tmpl, const SftRecord& record, const SftEncodeOptions& opt);

}  // namespace medgpt::data
