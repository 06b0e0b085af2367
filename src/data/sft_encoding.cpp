#include "data/sft_encoding.hpp"

namespace medgpt::data {

EncodedSample encode_sft(const Tokenizer& tok, const ChatTemplate& tmpl, const SftRecord& record, const SftEncodeOptions& opt) {
  const RenderedChat chat = tmpl.render(record.messages);
  EncodedSample s;
  std::vector<std::size_t> turn_ends;  // token positions where each assistant span ends
  std::size_t pos = 0;
  auto piece = [&](std::size_t b, std::size_t e, bool trained) {
    if (e <= b) return;
    tok.encode(std::string_view(chat.text).substr(b, e - b), /*add_special_tokens=*/false, s.ids);
    s.mask.resize(s.ids.size(), trained || opt.train_on_inputs ? 1 : 0);
  };
  for (const auto& [b, e] : chat.assistant_spans) {
    piece(pos, b, false);
    piece(b, e, true);
    turn_ends.push_back(s.ids.size());
    pos = e;
  }
  piece(pos, chat.text.size(), false);

  if (opt.max_length > 0 && s.ids.size() > opt.max_length) {
    std::size_t keep = 0;
    for (std::size_t end : turn_ends)
      if (end <= opt.max_length) keep = end;
    if (keep == 0) keep = opt.max_length;  // the first turn alone is too long: cut it
    s.ids.resize(keep);
    s.mask.resize(keep);
    s.truncated = true;
  }
  s.empty = true;
  for (auto m : s.mask)
    if (m) {
      s.empty = false;
      break;
    }
  return s;
}

}  // namespace medgpt::data
