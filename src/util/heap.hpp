// Keeps freed heap memory mapped for reuse. A training step frees and reallocates the same large
// tensors every time (activations, [rows, V] logit chunks, weight-sized gradients). glibc hands
// blocks above its mmap threshold (32 MB at most) back to the kernel on free, so every step pays
// page faults to map and zero them again (a 0.5B bf16 training step on 2 threads: 29 tokens/s with
// glibc's defaults, 80 with this). Serving all blocks from the heap and never trimming it removes
// that; peak memory is unchanged, but it is not returned to the system until exit. MALLOC_MMAP_MAX_ or MALLOC_TRIM_THRESHOLD_ in the
// environment (glibc's own settings) take precedence.
#pragma once

namespace medgpt::util {

void keep_freed_memory();

}  // namespace medgpt::util
