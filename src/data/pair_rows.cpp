#include "data/pair_rows.hpp"

namespace medgpt::data {

namespace {

void append_row(TokenArrays& rows, const TokenArrays& prompt, const TokenArrays& answer, std::size_t i) {
  std::vector<std::int32_t> ids;
  std::vector<std::uint8_t> mask;
  for (std::uint64_t t = prompt.offsets[i]; t < prompt.offsets[i + 1]; ++t) ids.push_back(static_cast<std::int32_t>(prompt.tokens[t])), mask.push_back(0);
  for (std::uint64_t t = answer.offsets[i]; t < answer.offsets[i + 1]; ++t) ids.push_back(static_cast<std::int32_t>(answer.tokens[t])), mask.push_back(1);
  rows.append(ids, mask);
}

}  // namespace

TokenArrays pair_rows(const ColumnSplit& pref) {
  TokenArrays rows;
  const TokenArrays &prompt = pref.at("prompt"), &chosen = pref.at("chosen"), &rejected = pref.at("rejected");
  for (std::size_t i = 0; i < pref.size(); ++i) {
    append_row(rows, prompt, chosen, i);
    append_row(rows, prompt, rejected, i);
  }
  return rows;
}

TokenArrays kto_rows(const ColumnSplit& kto) {
  TokenArrays rows;
  const TokenArrays &prompt = kto.at("prompt"), &completion = kto.at("completion"), &label = kto.at("label");
  for (std::size_t i = 0; i < kto.size(); ++i) {
    append_row(rows, prompt, completion, i);
    rows.desirable.push_back(label.tokens[label.offsets[i]] != 0 ? 1 : 0);
  }
  return rows;
}

}  // namespace medgpt::data
