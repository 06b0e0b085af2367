#include "data/pair_rows.hpp"

namespace medgpt::data {

TokenArrays pair_rows(const ColumnSplit& pref) {
  TokenArrays rows;
  const TokenArrays &prompt = pref.at("prompt"), &chosen = pref.at("chosen"), &rejected = pref.at("rejected");
  for (std::size_t i = 0; i < pref.size(); ++i)
    for (const TokenArrays* answer : {&chosen, &rejected}) {
      std::vector<std::int32_t> ids;
      std::vector<std::uint8_t> mask;
      for (std::uint64_t t = prompt.offsets[i]; t < prompt.offsets[i + 1]; ++t) ids.push_back(static_cast<std::int32_t>(prompt.tokens[t])), mask.push_back(0);
      for (std::uint64_t t = answer->offsets[i]; t < answer->offsets[i + 1]; ++t) ids.push_back(static_cast<std::int32_t>(answer->tokens[t])), mask.push_back(1);
      rows.append(ids, mask);
    }
  return rows;
}

}  // namespace medgpt::data
