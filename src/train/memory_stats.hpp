// A rank's memory, measured: the process's peak resident set (the kernel's VmHWM: what a job's
// memory limit sees) and the peak of live LibTorch CPU tensor bytes, counted by an allocator put in
// front of LibTorch's own (the difference is glibc's kept heap, MPI's buffers, code and libraries).
#pragma once

namespace medgpt::train {

// Installs the counting allocator (once; tensors allocated before are not counted). Call before
// the model is built.
void count_tensor_memory();

struct MemoryPeak {
  double resident = 0;  // bytes, since the process started
  double tensors = 0;   // bytes since the last restart_tensor_peak(); 0 without count_tensor_memory()
};
MemoryPeak memory_peak();
// The tensors' peak starts again from what is live now (training, after setting up).
void restart_tensor_peak();

}  // namespace medgpt::train
