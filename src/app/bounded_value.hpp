// Numeric options with their valid range, declared with the option: `at_least<std::int64_t>(1)`,
// `in_range(0.0, 1.0)`, `positive()` stand where `po::value<T>()` would. A value outside the range
// fails while the option is parsed, so the error names the option, its value and the range (and,
// from a config file, the file and line) before any work starts. Unsigned options also refuse a
// minus sign, which Boost's conversion would wrap around to a huge count.
#pragma once

#include <boost/program_options.hpp>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace medgpt::app {

namespace po = boost::program_options;

template <class T>
class BoundedValue : public po::typed_value<T> {
 public:
  // [lo, hi]; an open end excludes its bound.
  BoundedValue(T lo, T hi, bool lo_open, bool hi_open) : po::typed_value<T>(nullptr), lo_(lo), hi_(hi), lo_open_(lo_open), hi_open_(hi_open) {}

  void xparse(boost::any& store, const std::vector<std::string>& tokens) const override {
    if constexpr (std::is_unsigned_v<T>)
      for (const std::string& t : tokens)
        if (t.find('-') != std::string::npos) refuse(tokens);
    po::typed_value<T>::xparse(store, tokens);
    const T v = boost::any_cast<T>(store);
    const bool above = lo_open_ ? v > lo_ : v >= lo_, below = hi_open_ ? v < hi_ : v <= hi_;
    if (!(above && below)) refuse(tokens);  // also NaN
  }

  // "at least 1", "positive", "in [0, 1)".
  std::string rule() const {
    std::ostringstream s;
    if (hi_ == std::numeric_limits<T>::max() && !hi_open_) {
      if (lo_open_ && lo_ == T(0)) s << "positive";
      else s << (lo_open_ ? "greater than " : "at least ") << +lo_;
    } else {
      s << "in " << (lo_open_ ? "(" : "[") << +lo_ << ", " << +hi_ << (hi_open_ ? ")" : "]");
    }
    return s.str();
  }

 private:
  [[noreturn]] void refuse(const std::vector<std::string>& tokens) const {
    std::string value;
    for (const std::string& t : tokens) value += (value.empty() ? "" : " ") + t;
    // '%' would start a placeholder of Boost's message template.
    for (char& c : value)
      if (c == '%') c = '?';
    throw po::error_with_option_name("the value '" + value + "' of option '%canonical_option%' must be " + rule());
  }
  T lo_, hi_;
  bool lo_open_, hi_open_;
};

template <class T>
BoundedValue<T>* at_least(T lo) { return new BoundedValue<T>(lo, std::numeric_limits<T>::max(), false, false); }
template <class T>
BoundedValue<T>* in_range(T lo, T hi, bool hi_open = false) { return new BoundedValue<T>(lo, hi, false, hi_open); }
// > 0.
inline BoundedValue<double>* positive() { return new BoundedValue<double>(0.0, std::numeric_limits<double>::max(), true, false); }
// A count or size that cannot be negative (0 has a documented meaning where it is allowed).
template <class T>
BoundedValue<T>* non_negative() { return at_least<T>(T(0)); }

}  // namespace medgpt::app
