#include "util/progress.hpp"

#include <cstdio>

#include "util/log.hpp"

namespace medgpt::util {

namespace {
constexpr double kQuietSeconds = 2.0;  // short jobs print nothing
constexpr double kEverySeconds = 1.0;

std::string fmt_time(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, double total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), start_(std::chrono::steady_clock::now()), last_(start_) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(double done, const std::string& extra) {
  const auto now = std::chrono::steady_clock::now();
  const double t = std::chrono::duration<double>(now - start_).count();
  if (t < kQuietSeconds || std::chrono::duration<double>(now - last_).count() < kEverySeconds) return;
  last_ = now;
  const double scale = unit_ == "MB" ? 1e-6 : 1.0;
  const double rate = done / t;
  const double eta = rate > 0 && total_ > done ? (total_ - done) / rate : 0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: %5.1f%%  %.2f %s/s  ETA %s", label_.c_str(), total_ > 0 ? 100.0 * done / total_ : 0.0,
                rate * scale, unit_.c_str(), fmt_time(eta).c_str());
  log_progress(std::string(buf) + (extra.empty() ? "" : "  " + extra));
  shown_ = true;
}

void Progress::finish() {
  if (shown_) log_end_line();
}

}  // namespace medgpt::util
