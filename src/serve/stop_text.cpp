#include "serve/stop_text.hpp"

#include <algorithm>

namespace medgpt::serve {

StopText::StopText(std::vector<std::string> stop) : stop_(std::move(stop)) {
  stop_.erase(std::remove(stop_.begin(), stop_.end(), std::string()), stop_.end());
}

bool StopText::push(const std::string& piece) {
  if (stopped_) return false;
  const std::size_t from = all_.size();
  all_ += piece;
  // A stop string ending in the new piece starts at most size-1 bytes before it: the earlier text
  // was searched when it came, so the search is linear in the answer, not quadratic.
  std::size_t cut = std::string::npos;
  for (const auto& s : stop_) {
    const std::size_t start = from >= s.size() - 1 ? from - (s.size() - 1) : 0;
    cut = std::min(cut, all_.find(s, start));
  }
  if (cut == std::string::npos) return true;
  all_.resize(std::max(cut, sent_));  // never below what went out (it held no stop-string start)
  stopped_ = true;
  return false;
}

std::size_t StopText::ready(bool final) const {
  const std::size_t unsent = all_.size() - sent_;
  if (final || stopped_) return unsent;
  std::size_t keep = 0;  // the longest tail of the unsent text that is a proper prefix of a stop string
  for (const auto& s : stop_)
    for (std::size_t k = std::min(s.size() - 1, unsent); k > keep; --k)
      if (all_.compare(all_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
  return unsent - keep;
}

std::string StopText::take(bool final) {
  const std::size_t n = ready(final);
  std::string out = all_.substr(sent_, n);
  sent_ += n;
  return out;
}

}  // namespace medgpt::serve
