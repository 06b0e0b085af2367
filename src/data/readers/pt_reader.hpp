// Pretraining documents: a JSONL/JSON record {"text": "..."} (MedicalGPT's pretraining.py), or a
// .txt document that for_each_record hands over as {"text": ...}.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace medgpt::data {

struct PtRecord {
  std::string text;
};

PtRecord parse_pt(const nlohmann::json& record, const std::string& where);

}  // namespace medgpt::data
