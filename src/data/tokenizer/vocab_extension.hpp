// Vocabulary extension as MedicalGPT does it for a domain: new tokens are appended after the base
// vocabulary (and after its added tokens), base ids never change, and the merges that build the new
// tokens are appended after the base merges, so they apply only where the base merges stop.
#pragma once

#include <string>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"

namespace medgpt::data {

struct Extension {
  Tokenizer tokenizer;
  std::size_t added_tokens = 0;
  std::size_t added_merges = 0;
};

// Takes the domain tokenizer's tokens that the base lacks, in the domain's merge order
// (max_new_tokens = 0: all of them).
Extension extend_with_tokenizer(const Tokenizer& base, const Tokenizer& domain, std::size_t max_new_tokens = 0);

// Makes each word (normalized and pre-tokenized like any text) reachable by appending the merges
// that join its base tokens left to right.
Extension extend_with_words(const Tokenizer& base, const std::vector<std::string>& words);

}  // namespace medgpt::data
