// Preemption signals (DESIGN §6): SIGUSR1 (Slurm's warning, forwarded by the sbatch script) and
// SIGTERM only set a flag; the trainer looks at it at each step boundary, where the ranks agree to
// checkpoint and exit with kPreemptedExitCode.
#pragma once

#include <csignal>
#include <initializer_list>

namespace medgpt::util {

// The exit code of a run that stopped for a signal after writing its checkpoint: the sbatch
// scripts requeue the job on it.
constexpr int kPreemptedExitCode = 99;

// The given signals (default SIGUSR1 and SIGTERM; `serve` asks for SIGINT and SIGTERM) only set a
// lock-free flag, safe to read from any thread.
void install_stop_signal_handlers(std::initializer_list<int> signals = {SIGUSR1, SIGTERM});
// The signal received, or 0.
int stop_signal();
// For tests: behave as if `sig` had arrived.
void raise_stop_flag(int sig);

}  // namespace medgpt::util
