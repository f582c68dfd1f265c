// ambisql._ambisql: the Python module's C++ half. _Conn (conn.hpp) with its per-query
// methods as plain METH_FASTCALL methods, the module's other functions, and its
// initialization. Failures map to PEP 249 classes in errors.cpp, connect()'s options to
// the core's config in options.cpp, cursors live in cursor.cpp, values in values.cpp.
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "ambisql/error.hpp"
#include "ambisql/nb_connection.hpp"
#include "ambisql/retry.hpp"
#include "binding.hpp"
#include "conn.hpp"
#include "errors.hpp"
#include "values.hpp"

namespace py = pybind11;
using namespace ambisql;
using namespace ambisql::pybinding;

namespace {

// The methods every query calls (start_query/stream/execute, poll, wait, results, fileno,
// timeout) as plain METH_FASTCALL methods: pybind11's dispatch (argument loaders, type
// lookups by typeid hash) cost more per call than the work itself for poll() or fileno().
// CPython's method descriptor has checked that `self` is a _Conn already.

// (Not instrumented by AddressSanitizer: a greenlet switch inside (a wait callback) copies
// this frame; what it calls is instrumented.)
template <PyObject* (*Fn)(conn&, PyObject* const*, Py_ssize_t)>
__attribute__((no_sanitize("address"))) PyObject* fast_method(PyObject* self, PyObject* const* args,
                                                              Py_ssize_t nargs) noexcept {
    try {
        conn* c = conn_of(self);
        return c ? Fn(*c, args, nargs) : nullptr;
    } catch (...) {
        return translate_current();
    }
}

bool no_args(const char* name, Py_ssize_t nargs) {
    if (nargs == 0) return true;
    PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
    return false;
}

// start_query / start_stream / start_execute(sql: str, args=None)
template <void (conn::*Start)(const std::string&, const py::object&)>
PyObject* fast_start(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "start_*(sql: str, args=None)");
        return nullptr;
    }
    Py_ssize_t n = 0;
    const char* sql = PyUnicode_AsUTF8AndSize(args[0], &n);
    if (!sql) return nullptr;
    (c.*Start)(std::string(sql, static_cast<std::size_t>(n)),
               py::reinterpret_borrow<py::object>(nargs == 2 ? args[1] : Py_None));
    Py_RETURN_NONE;
}
PyObject* fast_start_query(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    return fast_start<&conn::start_query>(c, args, nargs);
}
PyObject* fast_start_stream(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    return fast_start<&conn::start_stream>(c, args, nargs);
}
PyObject* fast_start_execute(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    return fast_start<&conn::start_execute>(c, args, nargs);
}
PyObject* fast_poll(conn& c, PyObject* const*, Py_ssize_t nargs) {
    return no_args("poll", nargs) ? PyLong_FromLong(c.poll()) : nullptr;
}
PyObject* fast_wait(conn& c, PyObject* const*, Py_ssize_t nargs) {
    if (!no_args("wait", nargs)) return nullptr;
    c.wait();
    Py_RETURN_NONE;
}
PyObject* fast_results(conn& c, PyObject* const*, Py_ssize_t nargs) {
    return no_args("results", nargs) ? c.results().release().ptr() : nullptr;
}
PyObject* fast_fileno(conn& c, PyObject* const*, Py_ssize_t nargs) {
    return no_args("fileno", nargs) ? PyLong_FromLong(c.fileno()) : nullptr;
}
PyObject* fast_timeout(conn& c, PyObject* const*, Py_ssize_t nargs) {
    return no_args("timeout", nargs) ? c.timeout().release().ptr() : nullptr;
}

#define AMBISQL_FAST(name) \
    { #name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_method<&fast_##name>)), METH_FASTCALL, nullptr }
PyMethodDef fast_methods[] = {AMBISQL_FAST(start_query), AMBISQL_FAST(start_stream), AMBISQL_FAST(start_execute),
                              AMBISQL_FAST(poll),        AMBISQL_FAST(wait),         AMBISQL_FAST(results),
                              AMBISQL_FAST(fileno),      AMBISQL_FAST(timeout)};
#undef AMBISQL_FAST

}  // namespace

namespace ambisql::pybinding {
PyTypeObject* conn_type = nullptr;

conn* conn_of(PyObject* self) noexcept {
    auto vh = reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder();
    if (!vh.holder_constructed()) {
        PyErr_SetString(PyExc_TypeError, "_Conn.__init__() was not called");
        return nullptr;
    }
    return vh.value_ptr<conn>();
}

// For cursor.cpp, which has checked that `c` is a _Conn: the _Conn methods themselves,
// through their wrapper (fast_method: the exception mapping).
namespace {
bool succeeded(PyObject* r) {
    Py_XDECREF(r);
    return r != nullptr;
}
}  // namespace

bool start_query(PyObject* c, PyObject* query, PyObject* args) noexcept {
    PyObject* a[] = {query, args};
    return succeeded(fast_method<&fast_start_query>(c, a, 2));
}
bool wait(PyObject* c) noexcept { return succeeded(fast_method<&fast_wait>(c, nullptr, 0)); }
bool stream_pending(PyObject* c) noexcept {
    conn* k = conn_of(c);
    if (!k) PyErr_Clear();
    return k && k->stream_pending();
}
PyObject* results(PyObject* c) noexcept { return fast_method<&fast_results>(c, nullptr, 0); }
}  // namespace ambisql::pybinding

PYBIND11_MODULE(_ambisql, m) {
    m.doc() = "ambisql's C++ core for Python (use the ambisql package)";
    if (!pyconv::init_values()) throw py::error_already_set();
    if (!pybinding::add_cursor_type(m.ptr()) || !pybinding::add_green_wait_type(m.ptr()) ||
        !pybinding::add_drive_functions(m.ptr()))
        throw py::error_already_set();
    m.attr("Column") = py::reinterpret_borrow<py::object>(pyconv::column_item_type_object());
    m.def("set_error_factory", [](py::object f) { pybinding::set_error_factory(f.release().ptr()); });
    // Anything the core throws (a bad URL, say) becomes the PEP 249 class it maps to.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ambisql::error& e) {
            set_mapped(map_error(e.diag(), false, ""));
        }
    });
    // The retry rule of the C++ pool and transact() (ambisql/retry.hpp), for an error number
    // as the Python exceptions carry it: "retriable", "outcome_unknown" or "fatal".
    m.def("classify", [](int number, bool statements_sent, bool in_transaction, bool commit_sent, bool galera) {
        diagnostics d;
        if (number >= 2000 && number < 3000) {  // the client's numbers (err.py)
            d.kind = error_kind::client;
            if (number == 2006 || number == 2013 || number == 2055) {
                d.kind = error_kind::network;
                d.code = make_error_code(errc::connection_broken);
            } else if (number == 2002 || number == 2003) {
                d.kind = error_kind::network;
                d.code = make_error_code(errc::connect_failed);
            } else {
                d.code = make_error_code(errc::protocol_error);
            }
        } else if (number > 0) {
            d.kind = error_kind::server;
            d.server_code = static_cast<std::uint16_t>(number);
            d.code = std::error_code(number, server_category());
        } else {
            d.kind = error_kind::client;
            d.code = make_error_code(errc::bad_value);
        }
        d.sent = {true, statements_sent, in_transaction, commit_sent, galera};
        switch (classify(d)) {
            case failure_class::retriable: return "retriable";
            case failure_class::outcome_unknown: return "outcome_unknown";
            default: return "fatal";
        }
    });
    m.attr("POLL_OK") = static_cast<int>(poll_ok);
    m.attr("POLL_READ") = static_cast<int>(poll_read);
    m.attr("POLL_WRITE") = static_cast<int>(poll_write);
    py::class_<conn> cls(m, "_Conn");
    pybinding::conn_type = reinterpret_cast<PyTypeObject*>(cls.ptr());
    for (PyMethodDef& d : fast_methods) {
        py::object descr = py::reinterpret_steal<py::object>(
            PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &d));
        if (!descr) throw py::error_already_set();
        cls.attr(d.ml_name) = descr;
    }
    cls.def(py::init<>())
        .def("start_connect", &conn::start_connect)
        .def("start_query_commit", &conn::start_query_commit)
        .def("start_execute_many", &conn::start_execute_many)
        .def("start_read_rows", &conn::start_read_rows)
        .def("start_next_result", &conn::start_next_result)
        .def("start_discard", &conn::start_discard)
        .def("start_ping", &conn::start_ping)
        .def("start_reset", &conn::start_reset)
        .def("start_select_db", &conn::start_select_db)
        .def("start_set_charset", &conn::start_set_charset)
        .def("abort", &conn::abort)
        .def("cancel", &conn::cancel)
        .def("close", &conn::close)
        .def("batch", &conn::batch)
        .def("stream_description", &conn::stream_description)
        .def("stream_ok", &conn::stream_ok)
        .def("last_ok", &conn::last_ok)
        .def("literal", &conn::literal)
        .def("format", &conn::format)
        .def_property_readonly("busy", &conn::busy)
        .def_property_readonly("cancelling", &conn::cancelling)
        .def_property_readonly("is_open", &conn::is_open)
        .def_property_readonly("rows_pending", &conn::rows_pending)
        .def_property_readonly("more_results", &conn::more_results)
        .def_property_readonly("connection_id", &conn::connection_id)
        .def_property_readonly("server_version", &conn::server_version)
        .def_property_readonly("server_status", &conn::server_status)
        .def_property_readonly("in_transaction", &conn::in_transaction)
        .def_property_readonly("character_set", &conn::character_set)
        .def_property_readonly("tls_active", &conn::tls_active)
        .def_property_readonly("host_info", &conn::host_info);
}
