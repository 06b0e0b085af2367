#include "data/tokenizer/stream_decoder.hpp"

#include "util/utf8.hpp"

namespace medgpt::data {

std::string StreamDecoder::push(TokenId id) {
  pending_ += tok_.token_bytes(id, skip_);
  const std::size_t keep = util::utf8_incomplete_tail(pending_);
  std::string ready = util::utf8_lossy(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string rest = util::utf8_lossy(pending_);
  pending_.clear();
  return rest;
}

}  // namespace medgpt::data
