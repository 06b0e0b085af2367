#include "data/pt_packing.hpp"

namespace medgpt::data {

void add_document(TokenArrays& docs, std::vector<std::int32_t> ids, std::int32_t eos) {
  if (ids.empty() || ids.back() != eos) ids.push_back(eos);
  docs.append(ids);
}

std::size_t cut_blocks(TokenArrays& docs, std::size_t block_size, bool drop_tail) {
  const std::size_t n = docs.tokens.size();
  docs.blocks.assign(1, 0);
  for (std::size_t b = block_size; b <= n; b += block_size) docs.blocks.push_back(b);
  const std::size_t tail = n - docs.blocks.back();
  if (tail == 0) return 0;
  if (drop_tail) return tail;
  docs.blocks.push_back(n);
  return 0;
}

}  // namespace medgpt::data
