// The connection's one wait driver: connections.Connection._wait() and the buffered
// cursor's execute both come here to see a started operation to its end. It picks the
// waiter (the asyncio loop for synchronous code on a bridge greenlet, the wait callback
// set with set_wait_callback(): ambisql.green's hubs or a psycopg2-style one, or blocking
// poll(2) with the GIL released) and, when a wait is interrupted (the callback raised: a
// killed greenlet, a timeout), applies the core's cancellation rule through the same
// waiter: _Conn.cancel() kills the command and the callback drains its answer; interrupted
// again, cancel() closes the connection. The rule itself is the core's (io/cancel.hpp).
#include <Python.h>

#include "binding.hpp"
#include "conn.hpp"
#include "types.hpp"

namespace ambisql::pybinding {

namespace {

// What the driver decides by (connections.py keeps it here with set_wait_callback() and
// _register_bridge()).
struct {
    PyObject* callback = nullptr;  // None: blocking waits
    bool ends_done = false;        // the callback returns only once poll() said POLL_OK
    PyObject* bridges = nullptr;   // a tuple of greenlet classes
    PyObject* getcurrent = nullptr;
    PyObject* bridge_wait = nullptr;  // bridge_wait(conn): the loop of the bridge's parent waits
    PyObject* error = nullptr;        // err.Error: an operation's own failure
} waits;

PyObject *s_c, *s_on_hub, *s_green_watch, *s_sock_fd, *s_detach, *s_poll;  // interned names

// _set_wait(callback, ends_done, bridges, getcurrent, bridge_wait, error_class)
PyObject* set_wait(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyTuple_Check(args[2]) || !PyCallable_Check(args[3]) || !PyCallable_Check(args[4]) ||
        !PyType_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "_set_wait(callback, ends_done, bridges: tuple, getcurrent, bridge_wait, error)");
        return nullptr;
    }
    const int ends_done = PyObject_IsTrue(args[1]);
    if (ends_done < 0) return nullptr;
    Py_XSETREF(waits.callback, Py_NewRef(args[0]));
    waits.ends_done = ends_done != 0;
    Py_XSETREF(waits.bridges, Py_NewRef(args[2]));
    Py_XSETREF(waits.getcurrent, Py_NewRef(args[3]));
    Py_XSETREF(waits.bridge_wait, Py_NewRef(args[4]));
    Py_XSETREF(waits.error, Py_NewRef(args[5]));
    Py_RETURN_NONE;
}

// Calls f() with the exception already set put aside meanwhile; restores it after (f's
// own exception, if any, is dropped).
template <class F>
void keeping_error(F&& f) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    f();
    if (PyErr_Occurred()) PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

// The connection's socket is gone: so is any standing green watch on it.
void forget_socket(PyObject* connection) {
    PyObject* w = PyObject_GetAttr(connection, s_green_watch);
    if (w && w != Py_None && PyObject_SetAttr(connection, s_green_watch, Py_None) == 0) {
        PyObject* r = PyObject_CallMethodNoArgs(w, s_detach);
        Py_XDECREF(r);
    }
    Py_XDECREF(w);
    PyObject* none = PyLong_FromLong(-1);
    if (none) PyObject_SetAttr(connection, s_sock_fd, none);
    Py_XDECREF(none);
}

// After callback `cb` raised while waiting for connection `connection`'s operation (that
// exception fetched aside by the caller): the rule, through the same waiter. False with a
// new exception set: the one that interrupted the drain (the connection closed), which
// replaces the first.
bool interrupted(PyObject* connection, PyObject* cb) {
    PyObject* cobj = PyObject_GetAttr(connection, s_c);
    if (!cobj) return false;
    if (cobj == Py_None) {  // closed meanwhile (from another greenlet): nothing left to keep in step
        Py_DECREF(cobj);
        return true;
    }
    bool again = false;
    conn* c = conn_of(cobj);
    try {
        if (!c) throw py::error_already_set();
        if (c->busy()) {
            // On the hub itself, which cannot wait through itself (a query from a hub
            // callback), the cancellation is driven blocking.
            PyObject* on_hub = nullptr;
            if (optional_attr(cb, s_on_hub, &on_hub) < 0) throw py::error_already_set();
            int hub = 0;
            if (on_hub) {
                PyObject* r = PyObject_CallNoArgs(on_hub);
                Py_DECREF(on_hub);
                hub = r ? PyObject_IsTrue(r) : -1;
                Py_XDECREF(r);
                if (hub < 0) throw py::error_already_set();
            }
            if (hub) {
                c->abort();
            } else {
                c->cancel();
                PyObject* args[] = {connection};
                PyObject* r = PyObject_Vectorcall(cb, args, 1, nullptr);
                if (r) {
                    Py_DECREF(r);
                } else if (PyErr_ExceptionMatches(waits.error)) {
                    PyErr_Clear();  // the command's own outcome: the caller gets the first exception
                } else {
                    again = true;
                    keeping_error([&] { c->cancel(); });  // interrupted again: closed
                }
            }
        }
    } catch (...) {
        translate_current();
        again = true;
    }
    if (c && !c->is_open()) keeping_error([&] { forget_socket(connection); });
    Py_DECREF(cobj);
    return !again;
}

}  // namespace

// Not instrumented by AddressSanitizer: a greenlet switch inside copies this frame (see
// cursor_execute).
__attribute__((no_sanitize("address"))) PyObject* conn_wait(PyObject* connection, PyObject* c) noexcept {
    if (!waits.callback) {
        PyErr_SetString(PyExc_RuntimeError, "ambisql: _set_wait() was not called");
        return nullptr;
    }
    if (PyTuple_GET_SIZE(waits.bridges) > 0) {
        // Synchronous code on a greenlet whose parent awaits for it on an asyncio loop
        // (ambisql.aio.run_sync, SQLAlchemy's async adaptation): the loop waits.
        PyObject* g = PyObject_CallNoArgs(waits.getcurrent);
        if (!g) return nullptr;
        const int bridged = PyObject_IsInstance(g, waits.bridges);
        Py_DECREF(g);
        if (bridged < 0) return nullptr;
        if (bridged) return PyObject_CallOneArg(waits.bridge_wait, connection);
    }
    if (waits.callback == Py_None) return wait(c) ? Py_NewRef(Py_None) : nullptr;
    PyObject* cb = Py_NewRef(waits.callback);  // (set_wait_callback() may run meanwhile)
    PyObject* args[] = {connection};
    PyObject* r = PyObject_Vectorcall(cb, args, 1, nullptr);
    if (r && !waits.ends_done) {  // another's callback: poll() must say POLL_OK now (raises if it failed)
        PyObject* st = PyObject_CallMethodNoArgs(c, s_poll);
        if (st && !(PyLong_CheckExact(st) && PyLong_AsLong(st) == poll_ok)) {
            set_mapped({0, "the wait callback returned before poll() said POLL_OK", "programming"});
            Py_CLEAR(r);
        }
        Py_XDECREF(st);
        if (!st) Py_CLEAR(r);
    }
    if (!r) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb) PyException_SetTraceback(value, tb);
        if (interrupted(connection, cb)) {
            PyErr_Restore(type, value, tb);
        } else {  // the second interruption goes on, with the first as its context
            PyObject *type2, *value2, *tb2;
            PyErr_Fetch(&type2, &value2, &tb2);
            PyErr_NormalizeException(&type2, &value2, &tb2);
            if (value2 != value) PyException_SetContext(value2, Py_NewRef(value));
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            PyErr_Restore(type2, value2, tb2);
        }
    }
    Py_DECREF(cb);
    return r;
}

namespace {
// _wait(connection): conn_wait for connection._c.
PyObject* wait_function(PyObject*, PyObject* connection) {
    PyObject* c = PyObject_GetAttr(connection, s_c);
    if (!c) return nullptr;
    PyObject* r = Py_TYPE(c) == conn_type ? conn_wait(connection, c) : nullptr;
    if (Py_TYPE(c) != conn_type) PyErr_SetString(PyExc_TypeError, "_wait(connection): connection._c is not a _Conn");
    Py_DECREF(c);
    return r;
}

template <class F>
PyCFunction fn(F f) {
    return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}
PyMethodDef drive_functions[] = {{"_set_wait", fn(&set_wait), METH_FASTCALL, nullptr},
                                 {"_wait", fn(&wait_function), METH_O, nullptr},
                                 {nullptr, nullptr, 0, nullptr}};
}  // namespace

bool add_drive_functions(PyObject* m) {
    const interned_name names[] = {{&s_c, "_c"},
                                   {&s_on_hub, "_ambisql_on_hub"},
                                   {&s_green_watch, "_green_watch"},
                                   {&s_sock_fd, "_sock_fd"},
                                   {&s_detach, "detach"},
                                   {&s_poll, "poll"}};
    return intern_all(names) && PyModule_AddFunctions(m, drive_functions) == 0;
}

}  // namespace ambisql::pybinding
