// The process's MPI runtime: initialised once, finalised once, queried from anywhere.
// Works under mpirun/srun and as an MPI singleton (a plain `./medgpt ...` is world size 1).
#pragma once

#include <string>

namespace medgpt::parallel {

class MpiEnv {
 public:
  // Initialises MPI on first call (MPI_Init_thread, MPI_THREAD_FUNNELED: only the main thread
  // talks to MPI while LibTorch's worker threads compute). Later calls return the same object.
  // If something else already initialised MPI, it is adopted and left for that owner to finalise.
  // Throws util::Error if the library cannot give FUNNELED or better.
  static MpiEnv& instance(int* argc = nullptr, char*** argv = nullptr);

  // MPI_Finalize, once, if we initialised it. Free every communicator first (drop parallel::Grid).
  // Idempotent; also run at exit for a process that forgot.
  static void finalize();

  // True between initialisation and finalisation.
  static bool active();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int thread_level() const { return thread_level_; }

  MpiEnv(const MpiEnv&) = delete;
  MpiEnv& operator=(const MpiEnv&) = delete;
  ~MpiEnv();

 private:
  MpiEnv(int* argc, char*** argv);
  int rank_ = 0;
  int size_ = 1;
  int thread_level_ = 0;
};

// Rank and size in MPI_COMM_WORLD; initialise MPI on first use. Still answer (cached) after
// finalisation, so rank-aware logging works in shutdown paths.
int world_rank();
int world_size();

// Ends every rank of the job with `code` (MPI_Abort), so a fatal error on one rank never leaves the
// others waiting in a collective. Without an active MPI it just exits the process.
[[noreturn]] void abort(int code);

// Says a fatal error (its one line) once for the whole job. When every rank reaches this within
// grace_s seconds (a set-up error all ranks see alike), rank 0 prints each distinct line once and
// every rank gets true: they may all exit normally. Otherwise this rank prints its own line and
// gets false: the caller must abort(), since its peers may be waiting in a collective for it.
// Runs over a communicator of its own, so it never matches a collective the peers are in.
bool report_fatal_error(const std::string& line, double grace_s = 3.0);

}  // namespace medgpt::parallel
