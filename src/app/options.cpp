#include <cstdio>
#include <iostream>
#include <sstream>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "util/error.hpp"
#include "util/ini.hpp"
#include "util/json.hpp"

namespace medgpt::app {

namespace {

po::options_description common_options() {
  po::options_description d("Common options");
  d.add_options()
      ("help,h", "show this help")
      ("config", po::value<std::string>(), "INI file: [section] key=value sets --section.key; the command line wins")
      ("threads", non_negative<int>()->default_value(0), "threads per rank (0: the cores this rank may use)")
      ("log-all-ranks", po::value<bool>()->default_value(false)->implicit_value(true), "log from every rank, not only rank 0");
  return d;
}

po::options_description all_options(const Command& cmd) {
  po::options_description own(cmd.path + " options");
  if (cmd.options) cmd.options(own);
  po::options_description all;
  all.add(own).add(common_options());
  return all;
}

// Reads FILE.ini (util/ini.hpp). Each key is checked and parsed on its own so an error names its line.
void store_config_file(const std::string& path, const po::options_description& desc, po::variables_map& vm) {
  for (const util::IniEntry& e : util::parse_ini(util::read_file(path), path)) {
    if (e.key == "config") util::fail(util::at(path, e.line), "config files cannot include other config files", "remove the line");
    if (!desc.find_nothrow(e.key, false))
      util::fail(util::at(path, e.line), "unknown key '" + e.key + "'", "see --help for the options this command takes");
    try {
      std::vector<std::string> tok{"--" + e.key + "=" + e.value};
      po::store(po::command_line_parser(tok).options(desc).style(po::command_line_style::unix_style).run(), vm);
    } catch (const po::error& err) {
      util::fail(util::at(path, e.line), std::string(err.what()), "fix the value of '" + e.key + "'");
    }
  }
}

}  // namespace

void print_help(const Command& cmd) {
  std::cout << "usage: medgpt " << cmd.path << " [options]\n" << cmd.summary << "\n\n" << all_options(cmd) << "\n";
}

bool parse_options(const Command& cmd, const std::vector<std::string>& args, po::variables_map& vm) {
  const po::options_description desc = all_options(cmd);
  const std::string where = "medgpt " + cmd.path;
  try {
    po::store(po::command_line_parser(args).options(desc).style(po::command_line_style::unix_style).run(), vm);
  } catch (const po::error& e) {
    util::fail(where, e.what(), "see `medgpt " + cmd.path + " --help`");
  }
  if (vm.count("help")) {
    print_help(cmd);
    return false;
  }
  if (vm.count("config")) store_config_file(vm["config"].as<std::string>(), desc, vm);
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    util::fail(where, e.what(), "see `medgpt " + cmd.path + " --help`");
  }
  return true;
}

std::string required(const po::variables_map& vm, const std::string& name) {
  if (!vm.count(name) || vm[name].as<std::string>().empty())
    util::fail("--" + name, "missing", "this option is required");
  return vm[name].as<std::string>();
}

bool flag(const po::variables_map& vm, const std::string& name) { return vm.count(name) && vm[name].as<bool>(); }

std::string options_text(const po::variables_map& vm) {
  std::ostringstream s;
  for (const auto& [key, v] : vm) {
    const boost::any& a = v.value();
    s << key << " = ";
    if (const auto* x = boost::any_cast<std::string>(&a)) s << *x;
    else if (const auto* x = boost::any_cast<std::int64_t>(&a)) s << *x;
    else if (const auto* x = boost::any_cast<int>(&a)) s << *x;
    else if (const auto* x = boost::any_cast<double>(&a)) s << *x;
    else if (const auto* x = boost::any_cast<bool>(&a)) s << (*x ? "true" : "false");
    else if (const auto* x = boost::any_cast<std::uint64_t>(&a)) s << *x;
    else if (const auto* x = boost::any_cast<std::vector<std::string>>(&a))
      for (std::size_t i = 0; i < x->size(); ++i) s << (i ? " " : "") << (*x)[i];
    s << "\n";
  }
  return s.str();
}

}  // namespace medgpt::app
