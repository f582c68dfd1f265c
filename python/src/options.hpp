// connect()'s options as the core's config (the Python layer's keyword arguments, decided
// in ambisql/connections.py, with the URL's settings under them).
#pragma once

#include <pybind11/pybind11.h>

#include "ambisql/config.hpp"

namespace ambisql::pybinding {

config config_of(const pybind11::dict& options);
// options[key] as True or False; ProgrammingError naming the option otherwise.
bool flag_option(const pybind11::dict& options, const char* key);

}  // namespace ambisql::pybinding
