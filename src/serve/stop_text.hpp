// One answer's text as it is generated, cut at the first stop string (OpenAI `stop`): pieces go in
// as the tokens decode; text that could still be the start of a stop string is held back until the
// next piece settles it, so a streamed answer never shows a stop string or a part of one.
#pragma once

#include <string>
#include <vector>

namespace medgpt::serve {

class StopText {
 public:
  explicit StopText(std::vector<std::string> stop = {});
  // Appends a decoded piece; false once a stop string was hit (the text ends before it).
  bool push(const std::string& piece);
  // The text that can go out now and was not taken before: everything once `final` (generation
  // ended) or a stop string was hit, otherwise all but a possible stop-string start.
  std::string take(bool final);
  std::size_t ready(bool final) const;  // how many bytes take(final) would return
  bool stopped() const { return stopped_; }
  const std::string& text() const { return all_; }  // all of it so far, taken or not

 private:
  std::vector<std::string> stop_;
  std::string all_;
  std::size_t sent_ = 0;
  bool stopped_ = false;
};

}  // namespace medgpt::serve
