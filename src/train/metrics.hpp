// What a user watches: OUT/metrics.jsonl (one JSON object per logged step; a resumed run first
// drops rows past its checkpoint's step, then appends) and TensorBoard scalars in OUT/tb/. Only
// the writer rank (world rank 0) touches the files.
#pragma once

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace medgpt::util {
class TfEventsWriter;
}

namespace medgpt::train {

class MetricsLog {
 public:
  // resumed_step: rows with a larger step are left over from after the checkpoint and dropped.
  MetricsLog(const std::string& output_dir, bool writer, std::int64_t resumed_step);
  ~MetricsLog();
  // A row with "step"; every numeric field also goes to TensorBoard as train/<field>.
  void write(const nlohmann::ordered_json& row);

 private:
  bool writer_;
  std::ofstream out_;
  std::string path_;
  std::unique_ptr<util::TfEventsWriter> tb_;
};

}  // namespace medgpt::train
