// The mapping of failures to PEP 249 exceptions (see errors.hpp).
#include "errors.hpp"

#include <pybind11/pybind11.h>

#include "values.hpp"

namespace py = pybind11;

namespace ambisql::pybinding {

namespace {
// ambisql.err._from_driver(errno, message, kind) -> an exception. A plain reference, never
// released: a static py::object would be destroyed after the interpreter is gone.
PyObject* error_factory = nullptr;
}  // namespace


namespace {
mapped map_plain(const diagnostics& d, bool connecting, const std::string& host) {
    if ((d.kind == error_kind::server || d.kind == error_kind::auth) && d.server_code != 0)
        return {d.server_code, d.message, "server"};
    const std::error_code ec = d.code;
    auto is = [&](errc e) { return ec == make_error_code(e); };
    if (is(errc::operation_in_progress))
        return {2014, "Commands out of sync; you can't run this command now (" + d.message + ")", "programming"};
    if (is(errc::placeholder_mismatch) || is(errc::bad_value) || is(errc::charset_unknown) || is(errc::bad_text) ||
        is(errc::stale_handle) ||
        is(errc::result_pending) || is(errc::value_type_mismatch) || is(errc::value_out_of_range) ||
        is(errc::bad_url) || is(errc::bad_config))
        return {0, d.message, "programming"};
    if (is(errc::option_file_unreadable)) return {2000, d.message, "operational"};
    if (is(errc::cancelled) && d.connection_usable) return {1317, "Query execution was interrupted", "operational"};
    if (is(errc::local_infile_refused)) return {2068, d.message, "operational"};
    if (connecting) {
        if (d.kind == error_kind::tls) return {2026, "SSL connection error: " + d.message, "operational"};
        return {2003, "Can't connect to MySQL server on '" + host + "' (" + d.message + ")", "operational"};
    }
    if (is(errc::connection_broken) || is(errc::not_connected))
        return {2006, "MySQL server has gone away (" + d.message + ")", "operational"};
    if (is(errc::protocol_error) || is(errc::sequence_mismatch) || is(errc::packet_too_large))
        return {2027, "Malformed packet (" + d.message + ")", "operational"};
    return {2013, "Lost connection to MySQL server during query (" + d.message + ")", "operational"};
}
}  // namespace

mapped map_error(const diagnostics& d, bool connecting, const std::string& host) {
    mapped m = map_plain(d, connecting, host);
    m.sent = d.sent;
    return m;
}

void set_mapped(const mapped& m) {
    // the connection's record of what was sent, for ambisql.classify(): a tuple, or None
    py::object sent = py::none();
    if (m.sent.known) sent = py::make_tuple(m.sent.statements, m.sent.in_transaction, m.sent.commit, m.sent.galera);
    py::object exc = py::reinterpret_borrow<py::object>(error_factory)(m.errno_, m.message, m.kind, sent);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
}

[[noreturn]] void raise_mapped(const mapped& m) {
    set_mapped(m);
    throw py::error_already_set();
}
void set_error_factory(PyObject* factory) {
    Py_XDECREF(error_factory);
    error_factory = factory;
}

PyObject* translate_current() noexcept {
    try {
        throw;
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const ambisql::error& e) {
        try {
            set_mapped(map_error(e.diag(), false, ""));
        } catch (py::error_already_set& e2) {
            e2.restore();
        }
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

}  // namespace ambisql::pybinding


void ambisql::pyconv::set_escape_error(std::error_code ec) {
    try {
        ambisql::pybinding::set_mapped({0, "cannot interpolate text: " + ec.message(), "programming"});
    } catch (py::error_already_set& e) {
        e.restore();
    }
}

