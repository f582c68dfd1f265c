// connect()'s options as the core's config, through the core's one options builder
// (config_builder): the Python defaults, then the option file, the URL, and the keyword
// arguments given (connections.py leaves out those not given: unset is not false), each
// checked here for its Python type and range.
#pragma once

#include <pybind11/pybind11.h>

#include "ambisql/config.hpp"

namespace ambisql::pybinding {

config config_of(const pybind11::dict& options);
// options[key] as True or False; ProgrammingError naming the option otherwise.
bool flag_option(const pybind11::dict& options, const char* key);

}  // namespace ambisql::pybinding
