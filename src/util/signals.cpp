#include "util/signals.hpp"

#include <atomic>
#include <csignal>

namespace medgpt::util {

namespace {
// Lock-free, so safe in a signal handler and readable from any thread.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the stop flag must be lock-free");
extern "C" void on_stop_signal(int sig) { g_signal.store(sig, std::memory_order_relaxed); }
}  // namespace

void install_stop_signal_handlers(std::initializer_list<int> signals) {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking I/O and MPI calls resume; the flag is read at the step boundary
  for (const int sig : signals) sigaction(sig, &sa, nullptr);
}

int stop_signal() { return g_signal.load(std::memory_order_relaxed); }

void raise_stop_flag(int sig) { g_signal.store(sig, std::memory_order_relaxed); }

}  // namespace medgpt::util
