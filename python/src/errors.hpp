// Failures as the PEP 249 exceptions ambisql/err.py chooses: the core's diagnostics mapped
// to an error number, a message and a class family, as PyMySQL and the MySQL client name
// them.
#pragma once

#include <Python.h>

#include <string>

#include "ambisql/error.hpp"

namespace ambisql::pybinding {

// The PEP 249 class family, client error number and text for a failure: server errors by
// their code (err.py maps them as PyMySQL does); client failures as the MySQL client
// numbers them, with PyMySQL's texts.
struct mapped {
    int errno_;
    std::string message;
    const char* kind;  // "server", "operational", "programming", "interface"
    diagnostics::sent_record sent{};  // the connection's record (classify())
};

mapped map_error(const diagnostics& d, bool connecting, const std::string& host);
// Sets the exception `m` names (err._from_driver makes it).
void set_mapped(const mapped& m);
// The same, thrown as pybind11::error_already_set.
[[noreturn]] void raise_mapped(const mapped& m);
// The C++ exception being handled as the Python exception it maps to (set); nullptr.
PyObject* translate_current() noexcept;
// ambisql.err._from_driver(errno, message, kind) -> an exception; a reference kept for ever.
void set_error_factory(PyObject* factory);

}  // namespace ambisql::pybinding
