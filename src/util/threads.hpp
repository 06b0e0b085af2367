// How many threads this rank should use: OMP_NUM_THREADS if the user set it, else Slurm's
// SLURM_CPUS_PER_TASK, else the CPUs in this process's affinity mask (shared evenly among the
// ranks of this node when they were not bound).
#pragma once

namespace medgpt::util {

int default_threads();

}  // namespace medgpt::util
