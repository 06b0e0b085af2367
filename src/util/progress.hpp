// A progress line on stderr (rank 0), shown only once a job has run for a couple of seconds:
// percent done, rate and ETA.
#pragma once

#include <chrono>
#include <string>

namespace medgpt::util {

class Progress {
 public:
  // total: units of work (e.g. bytes); unit: what a unit is called in the rate ("MB" scales bytes).
  Progress(std::string label, double total, std::string unit = "MB");
  // done: units finished so far; extra: appended to the line (e.g. "1234 lines").
  void update(double done, const std::string& extra = {});
  void finish();
  double elapsed() const;

 private:
  std::string label_, unit_;
  double total_;
  std::chrono::steady_clock::time_point start_, last_;
  bool shown_ = false;
};

}  // namespace medgpt::util
