// Every JSONL/JSON record reader: one line through parse_record_line (invalid JSON, invalid UTF-8,
// non-objects), then through the parser of each kind (pt, sft, pref, kto, prompt), and the SFT
// conversations it accepts rendered with every chat template.
#include "common.hpp"
#include "data/chat_template.hpp"
#include "data/readers/readers.hpp"

using namespace medgpt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json record;
  try {
    record = data::parse_record_line(fuzz::as_text(data, size), "fuzz.jsonl:1");
  } catch (const util::Error&) {
    return 0;
  }
  for (const data::Kind kind : {data::Kind::Pt, data::Kind::Sft, data::Kind::Pref, data::Kind::Kto, data::Kind::Prompt})
    fuzz::refusal_ok([&] { data::check_record(kind, record, "fuzz.jsonl:1"); });
  fuzz::refusal_ok([&] {
    const data::SftRecord r = data::parse_sft(record, "fuzz.jsonl:1");
    for (const std::string& name : data::ChatTemplate::names())
      for (const bool cue : {false, true}) {
        data::RenderOptions o;
        o.add_generation_prompt = cue;
        fuzz::refusal_ok([&] { data::ChatTemplate::get(name).render(r.messages, o); });
      }
  });
  return 0;
}
