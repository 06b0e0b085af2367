// Pretraining text -> blocks, as MedicalGPT's group_texts: documents are concatenated, each
// followed by EOS (unless it already ends with it), and the stream is cut into block_size pieces;
// the tail is kept as a shorter block or dropped.
#pragma once

#include "data/corpus.hpp"

namespace medgpt::data {

// Appends one tokenized document (EOS added) to `docs`.
void add_document(TokenArrays& docs, std::vector<std::int32_t> ids, std::int32_t eos);

// Fills docs.blocks with block boundaries over docs.tokens; returns the number of tokens dropped.
std::size_t cut_blocks(TokenArrays& docs, std::size_t block_size, bool drop_tail);

}  // namespace medgpt::data
