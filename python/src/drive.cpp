// The connection's one wait driver: connections.Connection._wait() and the buffered
// cursor's execute both come here to see a started operation to its end, whatever waits.
//
// A waiter's only job is wait(conn, fd, events, timeout): return once descriptor `fd` is
// ready for `events` (POLL_READ, POLL_WRITE), once `timeout` seconds have passed (None: no
// limit), or once something else woke it (a close from elsewhere); raise when the caller is
// interrupted (a killed greenlet, a gevent/eventlet Timeout). Waiters: ambisql.green's for
// gevent (GeventWait, in C) and eventlet, and make_wait_callback()'s for any hub; the
// driver's loop here polls and calls them. The other ways to wait: blocking poll(2) with
// the GIL released (_Conn.wait(), when no callback is set), a psycopg2-style wait callback
// (fn(conn), which polls itself until POLL_OK), and, for synchronous code on a bridge
// greenlet, the asyncio loop its parent runs (connections._bridge_wait, _loop.drive) or
// the bridge class's own waiter (`_ambisql_wait`: Twisted's reactor, a trio task).
//
// An interrupted wait applies the core's cancellation rule (io/cancel.hpp) through the
// same waiter: _Conn.cancel() kills the command and the loop goes on draining its answer;
// interrupted again, cancel() closes the connection and that exception goes on, the first
// as its context; otherwise the first goes on once the connection is back in step. On a
// hub that cannot wait through itself (a query from a hub callback: the waiter's
// _ambisql_on_hub() says so), the cancellation is driven blocking (_Conn.abort()).
#include <Python.h>

#include "binding.hpp"
#include "conn.hpp"
#include "types.hpp"

namespace ambisql::pybinding {

namespace {

// What the driver decides by (connections.py keeps it here with set_wait_callback() and
// _register_bridge()).
struct {
    PyObject* callback = nullptr;  // None: blocking waits; else a waiter or a psycopg2-style callback
    bool waiter = false;           // callback._ambisql_waiter is True
    PyObject* on_hub = nullptr;    // callback._ambisql_on_hub, or None
    PyObject* bridges = nullptr;   // a tuple of greenlet classes
    PyObject* getcurrent = nullptr;
    PyObject* bridge_wait = nullptr;  // bridge_wait(conn): the loop of the bridge's parent waits
    PyObject* error = nullptr;        // err.Error: an operation's own failure
} waits;

PyObject *s_c, *s_bridge_waiter, *s_on_hub, *s_is_waiter, *s_green_watch, *s_sock_fd, *s_detach, *s_poll;  // interned names
PyObject* events_of[3];  // POLL_READ and POLL_WRITE as ints (1, 2)

// _set_wait(callback, bridges, getcurrent, bridge_wait, error_class)
PyObject* set_wait(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyTuple_Check(args[1]) || !PyCallable_Check(args[2]) || !PyCallable_Check(args[3]) ||
        !PyType_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "_set_wait(callback, bridges: tuple, getcurrent, bridge_wait, error)");
        return nullptr;
    }
    bool waiter = false;
    PyObject* on_hub = nullptr;
    if (args[0] != Py_None) {
        PyObject* flag = nullptr;
        if (optional_attr(args[0], s_is_waiter, &flag) < 0) return nullptr;
        waiter = flag == Py_True;
        Py_XDECREF(flag);
        if (optional_attr(args[0], s_on_hub, &on_hub) < 0) return nullptr;
    }
    Py_XSETREF(waits.callback, Py_NewRef(args[0]));
    waits.waiter = waiter;
    Py_XSETREF(waits.on_hub, on_hub ? on_hub : Py_NewRef(Py_None));
    Py_XSETREF(waits.bridges, Py_NewRef(args[1]));
    Py_XSETREF(waits.getcurrent, Py_NewRef(args[2]));
    Py_XSETREF(waits.bridge_wait, Py_NewRef(args[3]));
    Py_XSETREF(waits.error, Py_NewRef(args[4]));
    Py_RETURN_NONE;
}

// An exception set aside (normalized, its traceback attached), to raise later.
struct held_error {
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    held_error() = default;
    held_error(const held_error&) = delete;
    held_error& operator=(const held_error&) = delete;
    ~held_error() { clear(); }
    explicit operator bool() const { return value != nullptr; }
    void fetch() {
        clear();
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb) PyException_SetTraceback(value, tb);
    }
    void restore() {  // (ownership goes back to the interpreter)
        PyErr_Restore(type, value, tb);
        type = value = tb = nullptr;
    }
    void clear() {
        Py_CLEAR(type);
        Py_CLEAR(value);
        Py_CLEAR(tb);
    }
};

// The exception set now goes on with `first` as its context (a second interruption).
void chain_after(held_error& first) {
    held_error second;
    second.fetch();
    if (second.value != first.value) PyException_SetContext(second.value, Py_NewRef(first.value));
    second.restore();
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

// Whether the waiter cannot wait where it is called (on the hub itself); -1 on failure.
int on_hub(PyObject* fn) {
    if (fn == Py_None) return 0;
    PyObject* r = PyObject_CallNoArgs(fn);
    const int hub = r ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    return hub;
}

// The rule's first step after an interruption (its exception fetched into `first`): kill
// the command, or, on the hub, drive the cancellation blocking. True: keep waiting through
// the waiter (draining); false: done (the exception to raise is set).
bool first_interruption(conn& c, held_error& first, PyObject* hub_check) {
    try {
        const int hub = c.busy() ? on_hub(hub_check) : 0;
        if (hub < 0) throw py::error_already_set();
        if (hub) {
            c.abort();
            first.restore();
            return false;
        }
        c.cancel();
        return true;
    } catch (...) {  // (a signal during abort(): it closed the connection; its exception goes on)
        translate_current();
        chain_after(first);
        return false;
    }
}

// The rule's second step: interrupted again while the cancellation runs, the connection
// is closed (_Conn.cancel() again) and the exception set goes on, `first` as its context.
PyObject* second_interruption(PyObject* connection, conn& c, held_error& first) {
    keeping_error([&] {
        try {
            c.cancel();
        } catch (...) {
            translate_current();
        }
    });
    chain_after(first);
    if (!c.is_open()) keeping_error([&] { forget_socket(connection); });
    return nullptr;
}

// The loop for a waiter: poll, wait, until done.
__attribute__((no_sanitize("address"))) PyObject* drive_waiter(PyObject* connection, conn& c, PyObject* w,
                                                               PyObject* hub_check) {
    held_error first;
    bool failed = false;
    for (;;) {
        int st;
        try {
            st = c.poll();
        } catch (...) {  // the operation's own failure (after an interruption: of no interest)
            translate_current();
            if (first) PyErr_Clear();
            failed = !first;
            break;
        }
        if (st == poll_ok) break;
        PyObject* fd = PyLong_FromLong(c.fileno());
        PyObject* timeout = nullptr;
        try {
            timeout = c.timeout().release().ptr();
        } catch (...) {
            translate_current();
        }
        PyObject* r = nullptr;
        if (fd && timeout) {
            PyObject* args[] = {connection, fd, events_of[st], timeout};
            r = PyObject_Vectorcall(w, args, 4, nullptr);
        }
        Py_XDECREF(fd);
        Py_XDECREF(timeout);
        if (r) {
            Py_DECREF(r);
            continue;
        }
        if (first) {  // interrupted again while the cancellation runs: the rule closes
            return second_interruption(connection, c, first);
        }
        first.fetch();
        if (!first_interruption(c, first, hub_check)) {
            if (!c.is_open()) keeping_error([&] { forget_socket(connection); });
            return nullptr;
        }
    }
    if (!c.is_open()) keeping_error([&] { forget_socket(connection); });
    if (first) {
        first.restore();
        return nullptr;
    }
    if (failed) return nullptr;
    Py_RETURN_NONE;
}

// A psycopg2-style callback: cb(conn) loops poll() itself until POLL_OK; poll() must say
// POLL_OK after it (raising the operation's error if it failed). Interrupted: the rule,
// then cb(conn) again to drain.
__attribute__((no_sanitize("address"))) PyObject* drive_callback(PyObject* connection, PyObject* cobj, conn& c,
                                                                 PyObject* cb, PyObject* hub_check) {
    PyObject* args[] = {connection};
    PyObject* r = PyObject_Vectorcall(cb, args, 1, nullptr);
    if (r) {
        PyObject* st = PyObject_CallMethodNoArgs(cobj, s_poll);
        if (st && !(PyLong_CheckExact(st) && PyLong_AsLong(st) == poll_ok)) {
            set_mapped({0, "the wait callback returned before poll() said POLL_OK", "programming"});
            Py_CLEAR(r);
        }
        Py_XDECREF(st);
        if (!st) Py_CLEAR(r);
        if (r) return r;
        if (!c.busy()) return nullptr;  // (the operation's own failure)
    }
    held_error first;
    first.fetch();
    if (c.busy()) {
        if (!first_interruption(c, first, hub_check)) {
            if (!c.is_open()) keeping_error([&] { forget_socket(connection); });
            return nullptr;
        }
        PyObject* again = c.busy() ? PyObject_Vectorcall(cb, args, 1, nullptr) : Py_NewRef(Py_None);
        if (again) {
            Py_DECREF(again);
        } else if (PyErr_ExceptionMatches(waits.error)) {
            PyErr_Clear();  // the command's own outcome: the caller gets the first exception
        } else {  // interrupted again: the rule closes; this exception goes on
            return second_interruption(connection, c, first);
        }
    }
    if (!c.is_open()) keeping_error([&] { forget_socket(connection); });
    first.restore();
    return nullptr;
}

}  // namespace

// Not instrumented by AddressSanitizer: a greenlet switch inside copies this frame (see
// cursor_execute).
__attribute__((no_sanitize("address"))) PyObject* conn_wait(PyObject* connection, PyObject* cobj) noexcept {
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
        if (bridged <= 0) Py_DECREF(g);
        if (bridged < 0) return nullptr;
        if (bridged) {
            // A bridge class with a waiter of its own (ambisql.twisted's and ambisql.trio's
            // fibers: `_ambisql_wait`, a function on the class) waits through it, this
            // driver's loop polling; the others' parent drives the whole operation.
            PyObject* w = nullptr;
            const int has = optional_attr(reinterpret_cast<PyObject*>(Py_TYPE(g)), s_bridge_waiter, &w);
            Py_DECREF(g);
            if (has < 0) return nullptr;
            if (!w || w == Py_None) {
                Py_XDECREF(w);
                return PyObject_CallOneArg(waits.bridge_wait, connection);
            }
            conn* c = conn_of(cobj);
            PyObject* r = c ? drive_waiter(connection, *c, w, Py_None) : nullptr;
            Py_DECREF(w);
            return r;
        }
    }
    if (waits.callback == Py_None) return wait(cobj) ? Py_NewRef(Py_None) : nullptr;
    conn* c = conn_of(cobj);
    if (!c) return nullptr;
    // (set_wait_callback() may run meanwhile: these are kept for this operation)
    PyObject* cb = Py_NewRef(waits.callback);
    PyObject* hub_check = Py_NewRef(waits.on_hub);
    PyObject* r = waits.waiter ? drive_waiter(connection, *c, cb, hub_check)
                               : drive_callback(connection, cobj, *c, cb, hub_check);
    Py_DECREF(hub_check);
    Py_DECREF(cb);
    return r;
}

namespace {
// _wait(connection): conn_wait for connection._c.
PyObject* wait_function(PyObject*, PyObject* connection) {
    PyObject* c = PyObject_GetAttr(connection, s_c);
    if (!c) return nullptr;
    PyObject* r = nullptr;
    if (Py_TYPE(c) == conn_type)
        r = conn_wait(connection, c);
    else
        PyErr_SetString(PyExc_TypeError, "_wait(connection): connection._c is not a _Conn");
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
    const interned_name names[] = {{&s_c, "_c"},           {&s_bridge_waiter, "_ambisql_wait"}, {&s_on_hub, "_ambisql_on_hub"},
                                   {&s_is_waiter, "_ambisql_waiter"}, {&s_green_watch, "_green_watch"},
                                   {&s_sock_fd, "_sock_fd"}, {&s_detach, "detach"},
                                   {&s_poll, "poll"}};
    if (!intern_all(names)) return false;
    for (long i = 0; i < 3; ++i)
        if (!(events_of[i] = PyLong_FromLong(i))) return false;
    return PyModule_AddFunctions(m, drive_functions) == 0;
}

}  // namespace ambisql::pybinding
