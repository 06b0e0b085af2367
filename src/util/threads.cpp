#include "util/threads.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace medgpt::util {

namespace {
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (end && *end == '\0' && n > 0 && n < 1 << 20) ? static_cast<int>(n) : 0;
}
}  // namespace

int default_threads() {
  if (const int n = env_int("OMP_NUM_THREADS")) return n;
  if (const int n = env_int("SLURM_CPUS_PER_TASK")) return n;
  cpu_set_t set;
  CPU_ZERO(&set);
  int mask = 0;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) mask = CPU_COUNT(&set);
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (mask <= 0) mask = online > 0 ? static_cast<int>(online) : 1;
  // Unbound ranks on one node all see every CPU: give each its share instead of oversubscribing.
  const int local = std::max({env_int("OMPI_COMM_WORLD_LOCAL_SIZE"), env_int("SLURM_NTASKS_PER_NODE"), 1});
  if (local > 1 && mask == online) mask = std::max(1, mask / local);
  return mask;
}

}  // namespace medgpt::util
