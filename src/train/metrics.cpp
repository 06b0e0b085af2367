#include "train/metrics.hpp"

#include <filesystem>

#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/tfevents.hpp"

namespace medgpt::train {

namespace fs = std::filesystem;

MetricsLog::MetricsLog(const std::string& output_dir, bool writer, std::int64_t resumed_step)
    : writer_(writer), path_(output_dir + "/metrics.jsonl") {
  if (!writer_) return;
  fs::create_directories(output_dir);
  if (fs::exists(path_)) {  // keep the rows up to the checkpoint the run continues from
    std::ifstream in(path_);
    std::string kept, line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        if (nlohmann::json::parse(line).value("step", std::int64_t{0}) > resumed_step) continue;
      } catch (const nlohmann::json::exception&) {
        continue;  // a line cut by a crash
      }
      kept += line + "\n";
    }
    util::write_file_atomic(path_, kept);
  }
  out_.open(path_, std::ios::app);
  if (!out_) util::fail(path_, "cannot open for appending", "check the output directory's permissions");
  tb_ = std::make_unique<util::TfEventsWriter>(output_dir + "/tb");
}

MetricsLog::~MetricsLog() = default;

void MetricsLog::write(const nlohmann::ordered_json& row) {
  if (!writer_) return;
  out_ << row.dump() << "\n";
  out_.flush();
  const std::int64_t step = row.value("step", std::int64_t{0});
  for (const auto& [key, value] : row.items())
    if (value.is_number() && key != "step") tb_->scalar((key.rfind("eval_", 0) == 0 ? "eval/" + key.substr(5) : "train/" + key), value.get<double>(), step);
  tb_->flush();
}

}  // namespace medgpt::train
