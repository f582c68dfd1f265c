// Green-thread waits in C, for gevent: GeventWait, ambisql.green.patch_gevent()'s waiter
// (drive.cpp's loop calls it for every wait of an operation): a read on the connection's
// own socket waits on the connection's standing io watcher through the hub, with no Python
// frame of the driver per query between the caller and the hub's switch.
#include <Python.h>

#include "binding.hpp"
#include "conn.hpp"
#include "types.hpp"

namespace ambisql::pybinding {

namespace {

PyObject* intern(const char* s) {
    PyObject* o = PyUnicode_InternFromString(s);
    if (!o) throw py::error_already_set();
    return o;
}
// Calls obj.name() keeping the exception already set, if any (a cleanup after a failure).
bool call_keeping_error(PyObject* obj, PyObject* name) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject* r = PyObject_CallMethodNoArgs(obj, name);
    const bool ok = r != nullptr;
    Py_XDECREF(r);
    if (type) {
        if (!ok) PyErr_Clear();
        PyErr_Restore(type, value, tb);
    }
    return ok;
}

// One read wait through gevent's hub on io watcher `io`: the current greenlet's
// switch_out() hook if it has one (on the hub itself: gevent's BlockingSwitchOutError),
// io.start(current.switch), a timer throwing `expired` into the greenlet after `timeout`
// seconds (None: none), the switch to the hub; back on readable, expiry (returns normally:
// the next poll() reports the timeout), or a kill (raises). What hub.wait(io) does, less
// its Waiter (a stray switch back is harmless: the driver polls again and waits again), and
// without gevent's compiled getattr for the hook, which builds and drops an AttributeError
// every time (3.6k of 29.3k instructions per query). No watcher is left started. Not
// instrumented by AddressSanitizer (nor what calls it): the greenlet it switches away from
// is saved by copying its stack, these frames included, with memcpy, which ASan would
// report for the frames' redzones (a false positive of stack switching).
__attribute__((no_sanitize("address"))) PyObject* gevent_read_once(PyObject* io, PyObject* hub, PyObject* getcurrent,
                                                                   PyObject* switch_to, PyObject* expired,
                                                                   PyObject* timeout) {
    static PyObject* const s_switch_out = intern("switch_out");
    static PyObject* const s_switch = intern("switch");
    static PyObject* const s_throw = intern("throw");
    static PyObject* const s_start = intern("start");
    static PyObject* const s_stop = intern("stop");
    static PyObject* const s_close = intern("close");
    static PyObject* const s_loop = intern("loop");
    static PyObject* const s_timer = intern("timer");
    py::object cur = py::reinterpret_steal<py::object>(PyObject_CallNoArgs(getcurrent));
    if (!cur) return nullptr;
    PyObject* hook = nullptr;
    if (optional_attr(cur.ptr(), s_switch_out, &hook) < 0) return nullptr;
    if (hook) {
        PyObject* r = PyObject_CallNoArgs(hook);
        Py_DECREF(hook);
        if (!r) return nullptr;
        Py_DECREF(r);
    }
    py::object timer;
    if (timeout != Py_None) {  // the operation's deadline (read_timeout, a KILL's schedule)
        py::object loop = py::reinterpret_steal<py::object>(PyObject_GetAttr(hub, s_loop));
        if (!loop) return nullptr;
        timer = py::reinterpret_steal<py::object>(PyObject_CallMethodOneArg(loop.ptr(), s_timer, timeout));
        if (!timer) return nullptr;
        py::object thrower = py::reinterpret_steal<py::object>(PyObject_GetAttr(cur.ptr(), s_throw));
        if (!thrower) return nullptr;
        PyObject* r = PyObject_CallMethodObjArgs(timer.ptr(), s_start, thrower.ptr(), expired, nullptr);
        if (!r) return nullptr;
        Py_DECREF(r);
    }
    py::object wake = py::reinterpret_steal<py::object>(PyObject_GetAttr(cur.ptr(), s_switch));
    if (!wake) return nullptr;
    PyObject* r = PyObject_CallMethodOneArg(io, s_start, wake.ptr());
    if (!r) {
        if (timer) call_keeping_error(timer.ptr(), s_close);
        return nullptr;
    }
    Py_DECREF(r);
    r = PyObject_CallOneArg(switch_to, hub);  // back on readable, expiry, kill, timeout
    Py_XDECREF(r);
    // Stop what was started whatever woke this greenlet, keeping an exception if any.
    bool ok = call_keeping_error(io, s_stop);
    if (timer) ok = call_keeping_error(timer.ptr(), s_close) && ok;
    if (!r) {
        if (!PyErr_ExceptionMatches(expired)) return nullptr;  // killed, gevent.Timeout
        PyErr_Clear();  // the deadline passed: the next poll() reports the timeout
    } else if (!ok) {
        return nullptr;
    }
    Py_RETURN_NONE;
}

}  // namespace

namespace {

// ---- GeventWait: ambisql.green.patch_gevent()'s waiter, wait(conn, fd, events, timeout)
// (see drive.cpp), in C. Built with (get_hub, getcurrent, switch, expired, other, reader,
// on_hub): a read on the established connection's socket (conn._sock_fd) waits on the
// connection's standing watcher (conn._green_watch, made or remade by reader(conn, hub, fd)
// when it is missing or was made for another hub or socket); any other wait (a connect, a
// write, a cancellation's side connection) is other(conn, fd, events, timeout)'s. Its
// _ambisql_waiter is True and _ambisql_on_hub the on_hub it was given (drive.cpp reads both).
struct green_wait_object {
    PyObject_HEAD
    PyObject* f[7];  // get_hub, getcurrent, switch, expired, other, reader, on_hub
    vectorcallfunc vectorcall;
};
enum { g_get_hub, g_getcurrent, g_switch, g_expired, g_other, g_reader, g_on_hub };
PyObject *s_sock_fd, *s_green_watch, *s_hub, *s_fd, *s_io;  // interned names

PyObject* green_wait_call(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames);
PyObject* green_wait_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    if (kwargs || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 7) {
        PyErr_SetString(PyExc_TypeError, "GeventWait(get_hub, getcurrent, switch, expired, other, reader, on_hub)");
        return nullptr;
    }
    auto* w = reinterpret_cast<green_wait_object*>(type->tp_alloc(type, 0));
    if (!w) return nullptr;
    for (int i = 0; i < 7; ++i) w->f[i] = Py_NewRef(PyTuple_GET_ITEM(args, i));
    w->vectorcall = green_wait_call;
    return reinterpret_cast<PyObject*>(w);
}

// obj.name as a C long (a descriptor number); -1 with the exception set on failure.
long long_attr(PyObject* obj, PyObject* name, bool* ok) {
    PyObject* v = PyObject_GetAttr(obj, name);
    *ok = v != nullptr;
    if (!v) return -1;
    const long n = PyLong_AsLong(v);
    Py_DECREF(v);
    if (n == -1 && PyErr_Occurred()) *ok = false;
    return n;
}

// The standing watcher for (hub, fd) (a new reference): conn._green_watch if it was made
// for them, else what reader(conn, hub, fd) makes.
PyObject* standing_watcher(green_wait_object* w, PyObject* conn, PyObject* hub, PyObject* fdo, long fd) {
    PyObject* watch = PyObject_GetAttr(conn, s_green_watch);
    if (!watch) return nullptr;
    if (watch != Py_None) {
        PyObject* its_hub = PyObject_GetAttr(watch, s_hub);
        bool ok = its_hub != nullptr;
        const bool same_hub = its_hub == hub;
        Py_XDECREF(its_hub);
        const long its_fd = ok && same_hub ? long_attr(watch, s_fd, &ok) : -1;
        if (!ok) {
            Py_DECREF(watch);
            return nullptr;
        }
        if (same_hub && its_fd == fd) return watch;
    }
    Py_DECREF(watch);
    PyObject* args[] = {conn, hub, fdo};
    return PyObject_Vectorcall(w->f[g_reader], args, 3, nullptr);
}

// wait(conn, fd, events, timeout). Not instrumented by AddressSanitizer: the greenlet
// switch inside copies this frame (see gevent_read_once).
__attribute__((no_sanitize("address"))) PyObject* green_wait_call(PyObject* self, PyObject* const* args,
                                                                  size_t nargsf, PyObject* kwnames) {
    auto* w = reinterpret_cast<green_wait_object*>(self);
    if (PyVectorcall_NARGS(nargsf) != 4 || kwnames || !PyLong_Check(args[1]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "wait(conn, fd: int, events: int, timeout)");
        return nullptr;
    }
    PyObject* conn = args[0];
    const long fd = PyLong_AsLong(args[1]);
    if (fd == -1 && PyErr_Occurred()) return nullptr;  // (OverflowError)
    const long events = PyLong_AsLong(args[2]);
    bool ok = true;
    const long sock_fd = events == poll_read ? long_attr(conn, s_sock_fd, &ok) : -1;
    if (!ok) return nullptr;
    if (events != poll_read || fd != sock_fd || fd < 0)  // a connect's, a send's, a KILL's
        return PyObject_Vectorcall(w->f[g_other], args, 4, nullptr);
    PyObject* hub = PyObject_CallNoArgs(w->f[g_get_hub]);
    if (!hub) return nullptr;
    PyObject* result = nullptr;
    PyObject* watch = standing_watcher(w, conn, hub, args[1], fd);
    PyObject* io = watch ? PyObject_GetAttr(watch, s_io) : nullptr;
    if (io) result = gevent_read_once(io, hub, w->f[g_getcurrent], w->f[g_switch], w->f[g_expired], args[3]);
    Py_XDECREF(io);
    Py_XDECREF(watch);
    Py_DECREF(hub);
    return result;
}

PyObject* green_wait_tp_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    return PyVectorcall_Call(self, args, kwargs);
}

PyObject* green_wait_is_waiter(PyObject*, void*) { Py_RETURN_TRUE; }
PyObject* green_wait_on_hub(PyObject* self, void*) {
    return Py_NewRef(reinterpret_cast<green_wait_object*>(self)->f[g_on_hub]);
}
PyGetSetDef green_wait_getset[] = {{"_ambisql_waiter", green_wait_is_waiter, nullptr, nullptr, nullptr},
                                   {"_ambisql_on_hub", green_wait_on_hub, nullptr, nullptr, nullptr},
                                   {nullptr, nullptr, nullptr, nullptr, nullptr}};
PyTypeObject green_wait_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

}  // namespace

bool add_green_wait_type(PyObject* m) {
    const interned_name names[] = {
        {&s_sock_fd, "_sock_fd"}, {&s_green_watch, "_green_watch"}, {&s_hub, "hub"}, {&s_fd, "fd"}, {&s_io, "io"}};
    if (!intern_all(names)) return false;
    green_wait_type.tp_getset = green_wait_getset;
    green_wait_type.tp_vectorcall_offset = offsetof(green_wait_object, vectorcall);
    green_wait_type.tp_call = green_wait_tp_call;
    green_wait_type.tp_new = green_wait_new;
    if (!add_type<green_wait_object>(m, green_wait_type, "ambisql._ambisql.GeventWait",
                                     "ambisql.green.patch_gevent()'s waiter (see green.py).",
                                     Py_TPFLAGS_HAVE_VECTORCALL))
        return false;
    return true;
}

}  // namespace ambisql::pybinding
