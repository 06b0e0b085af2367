// What a corpus holds (`--kind`), and how a plain-text pretraining file separates documents
// (`--pt.doc_sep`). The kind decides which record reader applies and which .h5 layout is written.
#pragma once

#include <string>

namespace medgpt::data {

enum class Kind { Pt, Sft, Pref, Kto, Prompt };

// "pt", "sft", "pref", "kto" or "prompt"; anything else is a util::Error listing them.
Kind parse_kind(const std::string& name);
const char* to_string(Kind kind);

// Line: every non-blank line of a .txt file is a document (MedicalGPT's pretraining.py).
// Blank: documents are runs of non-blank lines, separated by blank lines (paragraph corpora).
enum class PtDocSep { Line, Blank };

// "line" or "blank"; anything else is a util::Error.
PtDocSep parse_doc_sep(const std::string& name);
const char* to_string(PtDocSep sep);

}  // namespace medgpt::data
