#include "dist/mpi_env.hpp"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "util/error.hpp"

namespace medgpt::dist {

namespace {
// Cached so world_rank() still answers after MPI_Finalize (logging during shutdown).
int g_rank = 0;
int g_size = 1;
// We called MPI_Init_thread, so we call MPI_Finalize (kept outside the singleton so its destructor
// need not refer to itself).
bool g_owner = false;

std::string level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
    default:
      return std::to_string(level);
  }
}
}  // namespace

MpiEnv::MpiEnv(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    MPI_Query_thread(&thread_level_);
  } else {
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &thread_level_);
    g_owner = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  g_rank = rank_;
  g_size = size_;
  // MPI_THREAD_* levels are ordered: SINGLE < FUNNELED < SERIALIZED < MULTIPLE.
  if (thread_level_ < MPI_THREAD_FUNNELED)
    util::fail("MPI",
               "the MPI library provides only " + level_name(thread_level_) +
                   ", medgpt needs MPI_THREAD_FUNNELED or better",
               "use an MPI built with thread support (Debian's Open MPI has it)");
}

MpiEnv::~MpiEnv() { finalize(); }

MpiEnv& MpiEnv::instance(int* argc, char*** argv) {
  // A function-local static: thread-safe one-time construction, destroyed (finalised) at exit.
  static MpiEnv env(argc, argv);
  return env;
}

void MpiEnv::finalize() {
  if (!active()) return;
  // Only finalise what we initialised; an adopted MPI belongs to its owner.
  if (g_owner) MPI_Finalize();
}

bool MpiEnv::active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

int world_rank() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized ? g_rank : MpiEnv::instance().rank();
}

int world_size() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized ? g_size : MpiEnv::instance().size();
}

void abort(int code) {
  std::fflush(nullptr);  // MPI_Abort kills without flushing: the error line must get out first
  if (MpiEnv::active()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this covers a process without MPI
}

}  // namespace medgpt::dist
