#include "parallel/mpi_env.hpp"

#include <mpi.h>

#include <cstdio>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace medgpt::parallel {

namespace {
// Cached so world_rank() still answers after MPI_Finalize (logging during shutdown).
int g_rank = 0;
int g_size = 1;
// We called MPI_Init_thread, so we call MPI_Finalize (kept outside the singleton so its destructor
// need not refer to itself).
bool g_owner = false;
// A duplicate of MPI_COMM_WORLD for report_fatal_error only, made while every rank initialises.
MPI_Comm g_error_comm = MPI_COMM_NULL;

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
    // MPI_Init_thread fails before any error handler exists; it may return a code rather than abort.
    if (const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &thread_level_); rc != MPI_SUCCESS) {
      char text[MPI_MAX_ERROR_STRING];
      int len = 0;
      if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
      std::fprintf(stderr, "medgpt: error: MPI: MPI_Init_thread failed (%.*s); check the MPI installation and how the job was launched\n",
                   len, text);
      std::fflush(stderr);
      std::_Exit(1);
    }
    g_owner = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  g_rank = rank_;
  g_size = size_;
  if (size_ > 1) MPI_Comm_dup(MPI_COMM_WORLD, &g_error_comm);
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
  if (g_error_comm != MPI_COMM_NULL) MPI_Comm_free(&g_error_comm);
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

bool report_fatal_error(const std::string& line, double grace_s) {
  if (!MpiEnv::active() || g_error_comm == MPI_COMM_NULL) {
    std::fprintf(stderr, "%s\n", line.c_str());
    return true;
  }
  // Have all ranks failed? A non-blocking barrier completes only if every rank gets here.
  MPI_Request req;
  MPI_Ibarrier(g_error_comm, &req);
  int all = 0;
  const double until = MPI_Wtime() + grace_s;
  while (MPI_Test(&req, &all, MPI_STATUS_IGNORE) == MPI_SUCCESS && !all && MPI_Wtime() < until) usleep(1000);
  if (!all) {
    std::fprintf(stderr, "%s\n", line.c_str());
    return false;
  }
  // Everyone is here: rank 0 gathers the lines and prints each distinct one once, in rank order.
  int len = static_cast<int>(line.size());
  std::vector<int> lens(static_cast<std::size_t>(g_size)), displs(static_cast<std::size_t>(g_size), 0);
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, g_error_comm);
  std::string all_lines;
  if (g_rank == 0) {
    for (int r = 1; r < g_size; ++r) displs[static_cast<std::size_t>(r)] = displs[static_cast<std::size_t>(r - 1)] + lens[static_cast<std::size_t>(r - 1)];
    all_lines.resize(static_cast<std::size_t>(displs.back() + lens.back()));
  }
  MPI_Gatherv(line.data(), len, MPI_CHAR, all_lines.data(), lens.data(), displs.data(), MPI_CHAR, 0, g_error_comm);
  if (g_rank == 0) {
    std::vector<std::string> said;
    for (int r = 0; r < g_size; ++r) {
      std::string l = all_lines.substr(static_cast<std::size_t>(displs[static_cast<std::size_t>(r)]), static_cast<std::size_t>(lens[static_cast<std::size_t>(r)]));
      if (std::find(said.begin(), said.end(), l) != said.end()) continue;
      std::fprintf(stderr, "%s\n", l.c_str());
      said.push_back(std::move(l));
    }
  }
  std::fflush(stderr);
  return true;
}

}  // namespace medgpt::parallel
