#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "util/error.hpp"

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

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Reads FILE.ini: "[section]" headers, "key = value" lines, '#' or ';' comments. Each key is
// checked and parsed on its own so an error names its line.
void store_config_file(const std::string& path, const po::options_description& desc, po::variables_map& vm) {
  std::ifstream in(path);
  if (!in) util::fail(path, "cannot open config file", "check the --config path");
  std::string line, section;
  for (std::int64_t n = 1; std::getline(in, line); ++n) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[') {
      if (t.back() != ']') util::fail(util::at(path, n), "malformed section header \"" + t + "\"", "write [section]");
      section = trim(t.substr(1, t.size() - 2));
      continue;
    }
    const auto eq = t.find('=');
    if (eq == std::string::npos) util::fail(util::at(path, n), "expected key = value, got \"" + t + "\"", "fix the line");
    const std::string key = (section.empty() ? "" : section + ".") + trim(t.substr(0, eq));
    const std::string value = trim(t.substr(eq + 1));
    if (key == "config") util::fail(util::at(path, n), "config files cannot include other config files", "remove the line");
    if (!desc.find_nothrow(key, false))
      util::fail(util::at(path, n), "unknown key '" + key + "'", "see --help for the options this command takes");
    try {
      std::vector<std::string> tok{"--" + key + "=" + value};
      po::store(po::command_line_parser(tok).options(desc).style(po::command_line_style::unix_style).run(), vm);
    } catch (const po::error& e) {
      util::fail(util::at(path, n), std::string(e.what()), "fix the value of '" + key + "'");
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
