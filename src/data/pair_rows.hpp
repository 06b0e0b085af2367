// A preference corpus (prompt, chosen, rejected columns) as training rows: sample 2i is
// prompt + chosen and 2i+1 prompt + rejected, the loss mask set on the completion tokens only, so
// the loader serves them as pairs (LoaderOptions::group = 2) and label -100 marks the prompt.
#pragma once

#include "data/corpus.hpp"

namespace medgpt::data {

TokenArrays pair_rows(const ColumnSplit& pref);

}  // namespace medgpt::data
