// A medgpt subcommand: its path ("tokenizer encode"), a one-line summary, its options and its body.
// Every command also takes the common options (--config, --threads, --log-all-ranks, --help).
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <string>
#include <vector>

namespace medgpt::app {

namespace po = boost::program_options;

struct Command {
  std::string path;
  std::string summary;
  std::function<void(po::options_description&)> options;
  std::function<int(const po::variables_map&)> run;
};

// The commands main knows about, in help order (one registration function per command file).
void register_tokenizer_commands(std::vector<Command>& out);
void register_tokenizer_bench(std::vector<Command>& out);
void register_model_commands(std::vector<Command>& out);
void register_lora_commands(std::vector<Command>& out);
void register_checkpoint_commands(std::vector<Command>& out);
void register_model_bench(std::vector<Command>& out);
void register_prepare_command(std::vector<Command>& out);
void register_data_commands(std::vector<Command>& out);
void register_data_bench_commands(std::vector<Command>& out);
void register_train_command(std::vector<Command>& out);
void register_generate_command(std::vector<Command>& out);
void register_chat_command(std::vector<Command>& out);
void register_serve_command(std::vector<Command>& out);
void register_score_command(std::vector<Command>& out);
void register_plan_command(std::vector<Command>& out);
void register_memory_command(std::vector<Command>& out);

// Parses args (after the command path) with --config FILE.ini under the command line; throws
// util::Error naming an unknown option or key. Returns false when --help was printed.
bool parse_options(const Command& cmd, const std::vector<std::string>& args, po::variables_map& vm);
void print_help(const Command& cmd);

// Option helpers so every command spells common things the same way.
std::string required(const po::variables_map& vm, const std::string& name);
bool flag(const po::variables_map& vm, const std::string& name);
// The effective options as INI-style text, one `key = value` line each (a run's checkpoints record it).
std::string options_text(const po::variables_map& vm);

}  // namespace medgpt::app
