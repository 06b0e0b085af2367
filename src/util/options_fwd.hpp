// Boost.Program_options' two types, declared for the headers that declare a struct's options
// beside it (add_*_options / *_options); only their .cpp files include the library's header.
#pragma once

namespace boost::program_options {
class options_description;
class variables_map;
}  // namespace boost::program_options

namespace medgpt {
namespace po = boost::program_options;
}  // namespace medgpt
