// Preference corpora as training rows, the loss mask set on the completion tokens only (label
// -100 marks the prompt):
// - pair_rows: a pref corpus (prompt, chosen, rejected); sample 2i is prompt + chosen and 2i+1
//   prompt + rejected, served as pairs (LoaderOptions::group = 2);
// - kto_rows: a kto corpus (prompt, completion, label); sample i is prompt + completion with
//   TokenArrays::desirable[i] its label.
#pragma once

#include "data/corpus.hpp"

namespace medgpt::data {

TokenArrays pair_rows(const ColumnSplit& pref);
TokenArrays kto_rows(const ColumnSplit& kto);

}  // namespace medgpt::data
