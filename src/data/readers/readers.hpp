// The record readers in one include: file iteration, line parsing, and one parser per kind.
#pragma once

#include "data/readers/for_each_record.hpp"
#include "data/readers/kind.hpp"
#include "data/readers/kto_reader.hpp"
#include "data/readers/messages.hpp"
#include "data/readers/pref_reader.hpp"
#include "data/readers/prompt_reader.hpp"
#include "data/readers/pt_reader.hpp"
#include "data/readers/record_file.hpp"
#include "data/readers/record_line.hpp"
#include "data/readers/sft_reader.hpp"

namespace medgpt::data {

// Parses `record` as `kind` and drops the result: validation for a whole file (tests, a dry run).
void check_record(Kind kind, const nlohmann::json& record, const std::string& where, const TurnRules& rules = {});

}  // namespace medgpt::data
