// medgpt: one MPI-launched executable with subcommands. Runs under mpirun/srun or alone (an MPI
// singleton). Errors are one line; a fatal error on one rank aborts the job so no rank hangs.
#include <ATen/Parallel.h>

#include <cstdio>
#include <iostream>

#include "app/command.hpp"
#include "parallel/mpi_env.hpp"
#include "util/error.hpp"
#include "util/heap.hpp"
#include "util/log.hpp"
#include "util/threads.hpp"

namespace {

using medgpt::app::Command;

std::vector<Command> all_commands() {
  std::vector<Command> cmds;
  medgpt::app::register_tokenizer_commands(cmds);
  medgpt::app::register_tokenizer_bench(cmds);
  medgpt::app::register_prepare_command(cmds);
  medgpt::app::register_data_commands(cmds);
  medgpt::app::register_data_bench_commands(cmds);
  medgpt::app::register_train_command(cmds);
  medgpt::app::register_generate_command(cmds);
  medgpt::app::register_chat_command(cmds);
  medgpt::app::register_serve_command(cmds);
  medgpt::app::register_score_command(cmds);
  medgpt::app::register_plan_command(cmds);
  medgpt::app::register_memory_command(cmds);
  medgpt::app::register_model_commands(cmds);
  medgpt::app::register_lora_commands(cmds);
  medgpt::app::register_checkpoint_commands(cmds);
  medgpt::app::register_model_bench(cmds);
  return cmds;
}

// Commands whose path starts with `prefix` ("" for all), as help lines.
void print_listing(const std::vector<Command>& cmds, const std::string& prefix) {
  std::cout << "usage: medgpt " << (prefix.empty() ? "<command>" : prefix + " <subcommand>")
            << " [options]   (--help on any command lists its options)\n\n";
  std::cout << "Train, align, serve and evaluate medical LLMs (MedicalGPT's pipeline as one C++/MPI program).\n\n";
  for (const auto& c : cmds)
    if (prefix.empty() || c.path.rfind(prefix + " ", 0) == 0) std::printf("  %-22s %s\n", c.path.c_str(), c.summary.c_str());
}

int run(int argc, char** argv) {
  const std::vector<Command> cmds = all_commands();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_listing(cmds, "");
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "medgpt 0.1.0\n";
    return 0;
  }
  // The longest command path that the leading words spell.
  const Command* cmd = nullptr;
  std::size_t words = 0;
  for (const auto& c : cmds) {
    std::size_t n = 0, pos = 0;
    bool match = true;
    while (pos < c.path.size()) {
      const auto sp = c.path.find(' ', pos);
      const std::string w = c.path.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
      if (n >= args.size() || args[n] != w) {
        match = false;
        break;
      }
      ++n;
      pos = sp == std::string::npos ? c.path.size() : sp + 1;
    }
    if (match && n > words) cmd = &c, words = n;
  }
  if (!cmd) {
    bool group = false;
    for (const auto& c : cmds) group |= c.path.rfind(args[0] + " ", 0) == 0;
    if (group) {
      const bool asked = args.size() == 1 || args[1] == "--help" || args[1] == "-h";
      if (!asked) std::cerr << "medgpt: error: unknown subcommand '" << args[0] << " " << args[1] << "'; see the list below\n";
      print_listing(cmds, args[0]);
      return asked ? 0 : 2;
    }
    medgpt::util::fail("", "unknown command '" + args[0] + "'", "run `medgpt --help` for the list");
  }
  args.erase(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(words));

  // MPI first, so that an option error under mpirun is said once for the job, not once per rank.
  auto& mpi = medgpt::parallel::MpiEnv::instance(&argc, &argv);
  medgpt::app::po::variables_map vm;
  if (!medgpt::app::parse_options(*cmd, args, vm)) return 0;

  medgpt::util::set_log_rank(mpi.rank(), mpi.size(), medgpt::app::flag(vm, "log-all-ranks"));
  const int threads = vm["threads"].as<int>() > 0 ? vm["threads"].as<int>() : medgpt::util::default_threads();
  at::set_num_threads(threads);
  return cmd->run(vm);
}

}  // namespace

int main(int argc, char** argv) {
  medgpt::util::keep_freed_memory();  // before the first allocation that might be mmapped
  int rc = 1;
  try {
    rc = run(argc, argv);
  } catch (const medgpt::util::CollectiveError& e) {
    // Every rank raised it together: say it once.
    if (medgpt::parallel::world_rank() == 0) std::cerr << medgpt::util::error_line(e) << "\n";
    rc = 1;
  } catch (const std::exception& e) {
    medgpt::util::log_end_line();
    // Said once when every rank failed alike (a set-up error); otherwise other ranks may be waiting
    // in a collective for this one: end them all.
    if (!medgpt::parallel::report_fatal_error(medgpt::util::error_line(e))) medgpt::parallel::abort(1);
    rc = 1;
  }
  medgpt::parallel::MpiEnv::finalize();
  return rc;
}
