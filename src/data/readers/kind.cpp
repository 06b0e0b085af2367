#include "data/readers/kind.hpp"

#include "util/error.hpp"

namespace medgpt::data {

Kind parse_kind(const std::string& name) {
  if (name == "pt") return Kind::Pt;
  if (name == "sft") return Kind::Sft;
  if (name == "pref") return Kind::Pref;
  if (name == "kto") return Kind::Kto;
  if (name == "prompt") return Kind::Prompt;
  util::fail("--kind", "unknown data kind '" + name + "'",
             "use pt (pretraining text), sft (conversations), pref (chosen/rejected pairs), kto (labelled "
             "completions) or prompt (RL and evaluation questions)");
}

const char* to_string(Kind kind) {
  switch (kind) {
    case Kind::Pt: return "pt";
    case Kind::Sft: return "sft";
    case Kind::Pref: return "pref";
    case Kind::Kto: return "kto";
    case Kind::Prompt: return "prompt";
  }
  return "?";
}

PtDocSep parse_doc_sep(const std::string& name) {
  if (name == "line") return PtDocSep::Line;
  if (name == "blank") return PtDocSep::Blank;
  util::fail("--pt.doc_sep", "unknown document separator '" + name + "'",
             "use line (one document per line) or blank (documents separated by blank lines)");
}

const char* to_string(PtDocSep sep) { return sep == PtDocSep::Line ? "line" : "blank"; }

}  // namespace medgpt::data
