#include "util/heap.hpp"

#include <malloc.h>

#include <climits>
#include <cstdlib>

namespace medgpt::util {

void keep_freed_memory() {
  if (std::getenv("MALLOC_MMAP_MAX_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

}  // namespace medgpt::util
