// Green-thread waits in C, for gevent: GeventWait, ambisql.green.patch_gevent()'s wait
// callback, and _Conn.watch_read, its read wait on the connection's own socket through the
// hub. No Python frame of the driver per query between the caller and the hub's switch.
#include <Python.h>

#include "binding.hpp"
#include "conn.hpp"
#include "types.hpp"

namespace ambisql::pybinding {

namespace {

// A green-thread hub's read wait on the connection's own socket (green.patch_gevent()):
// polls, and while the operation waits to read socket `fd`, has the hub switch back to the
// current greenlet when `fd` turns readable (io.start(current.switch)) or when the
// operation's deadline passes (a timer throwing `expired` into it), runs the greenlet's
// switch_out() hook if it has one (on the hub itself: gevent's BlockingSwitchOutError) and
// switches to the hub. Returns the first other poll() state (POLL_OK, or a wait on another
// socket, a connect's or a cancellation's, which the caller serves). Arguments: (fd, io,
// hub, getcurrent, switch, expired) with `switch` the unbound greenlet.switch; no watcher
// is left started.
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
// Not instrumented by AddressSanitizer (nor fast_method, which calls it): the greenlet it
// switches away from is saved by copying its stack, these frames included, with memcpy,
// which ASan would report for the frames' redzones (a false positive of stack switching).
}  // namespace

__attribute__((no_sanitize("address"))) PyObject* fast_watch_read(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    static PyObject* const s_switch_out = intern("switch_out");
    static PyObject* const s_switch = intern("switch");
    static PyObject* const s_throw = intern("throw");
    static PyObject* const s_start = intern("start");
    static PyObject* const s_stop = intern("stop");
    static PyObject* const s_close = intern("close");
    static PyObject* const s_loop = intern("loop");
    static PyObject* const s_timer = intern("timer");
    if (nargs != 6 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "watch_read(fd: int, io, hub, getcurrent, switch, expired)");
        return nullptr;
    }
    const long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return nullptr;  // (OverflowError)
    PyObject *io = args[1], *hub = args[2], *getcurrent = args[3], *switch_to = args[4], *expired = args[5];
    for (;;) {
        const int st = c.poll();
        if (st != poll_read || c.fileno() != fd) return PyLong_FromLong(st);
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
        if (c.timed()) {  // the operation's deadline (read_timeout, a KILL's schedule)
            py::object loop = py::reinterpret_steal<py::object>(PyObject_GetAttr(hub, s_loop));
            if (!loop) return nullptr;
            py::object secs = c.timeout();
            timer = py::reinterpret_steal<py::object>(PyObject_CallMethodOneArg(loop.ptr(), s_timer, secs.ptr()));
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
    }
}

namespace {

// ---- GeventWait: ambisql.green.patch_gevent()'s wait callback, wait(conn), in C (no
// Python frame per query). Built with (get_hub, getcurrent, switch, expired, serve,
// reader, on_hub): a read on the established connection's socket waits on the connection's
// standing watcher (conn._green_watch, made or remade by reader(conn, hub, fd) when it is
// missing or was made for another hub or socket) through _Conn.watch_read; anything else
// (a connect, a write, a cancellation's side connection) through serve(conn, c, state).
// Its _ambisql_ends_done is True (it returns at POLL_OK only) and _ambisql_on_hub the
// on_hub it was given (connections.py reads both).
struct green_wait_object {
    PyObject_HEAD
    PyObject* f[7];  // get_hub, getcurrent, switch, expired, serve, reader, on_hub
    vectorcallfunc vectorcall;
};
enum { g_get_hub, g_getcurrent, g_switch, g_expired, g_serve, g_reader, g_on_hub };
PyObject *s_sock_fd, *s_green_watch, *s_hub, *s_fd, *s_io, *s_c, *s_poll;  // interned names

PyObject* green_wait_call(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames);
PyObject* green_wait_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    if (kwargs || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 7) {
        PyErr_SetString(PyExc_TypeError, "GeventWait(get_hub, getcurrent, switch, expired, serve, reader, on_hub)");
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
PyObject* standing_watcher(green_wait_object* w, PyObject* conn, PyObject* hub, long fd) {
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
    PyObject* fdo = PyLong_FromLong(fd);
    if (!fdo) return nullptr;
    PyObject* args[] = {conn, hub, fdo};
    watch = PyObject_Vectorcall(w->f[g_reader], args, 3, nullptr);
    Py_DECREF(fdo);
    return watch;
}

// wait(conn). Not instrumented by AddressSanitizer: the greenlet switch inside copies
// this frame (see cursor_execute).
__attribute__((no_sanitize("address"))) PyObject* green_wait_call(PyObject* self, PyObject* const* args,
                                                                  size_t nargsf, PyObject* kwnames) {
    auto* w = reinterpret_cast<green_wait_object*>(self);
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames) {
        PyErr_SetString(PyExc_TypeError, "wait(conn)");
        return nullptr;
    }
    PyObject* conn = args[0];
    PyObject* c = PyObject_GetAttr(conn, s_c);
    if (!c) return nullptr;
    PyObject* result = nullptr;
    PyObject* state = nullptr;
    PyObject *hub = nullptr, *watch = nullptr, *io = nullptr;
    bool ok = true;
    const long fd = Py_TYPE(c) == conn_type ? long_attr(conn, s_sock_fd, &ok) : -1;
    if (!ok) goto done;
    if (fd >= 0) {
        hub = PyObject_CallNoArgs(w->f[g_get_hub]);
        if (!hub) goto done;
        watch = standing_watcher(w, conn, hub, fd);
        if (!watch) goto done;
        io = PyObject_GetAttr(watch, s_io);
        if (!io) goto done;
        PyObject* fdo = PyLong_FromLong(fd);
        if (!fdo) goto done;
        PyObject* wargs[] = {fdo, io, hub, w->f[g_getcurrent], w->f[g_switch], w->f[g_expired]};
        state = watch_read(c, wargs);
        Py_DECREF(fdo);
    } else {  // connecting (or not a _Conn: serve() says what it is)
        PyObject* poll_args[] = {c};
        state = PyObject_VectorcallMethod(s_poll, poll_args, 1, nullptr);
    }
    if (!state) goto done;
    if (PyLong_CheckExact(state) && PyLong_AsLong(state) == 0) {  // POLL_OK
        result = Py_NewRef(Py_None);
    } else {
        PyObject* serve_args[] = {conn, c, state};
        result = PyObject_Vectorcall(w->f[g_serve], serve_args, 3, nullptr);
    }
done:
    Py_XDECREF(state);
    Py_XDECREF(io);
    Py_XDECREF(watch);
    Py_XDECREF(hub);
    Py_DECREF(c);
    return result;
}

PyObject* green_wait_tp_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    return PyVectorcall_Call(self, args, kwargs);
}

PyObject* green_wait_ends_done(PyObject*, void*) { Py_RETURN_TRUE; }
PyObject* green_wait_on_hub(PyObject* self, void*) {
    return Py_NewRef(reinterpret_cast<green_wait_object*>(self)->f[g_on_hub]);
}
PyGetSetDef green_wait_getset[] = {{"_ambisql_ends_done", green_wait_ends_done, nullptr, nullptr, nullptr},
                                   {"_ambisql_on_hub", green_wait_on_hub, nullptr, nullptr, nullptr},
                                   {nullptr, nullptr, nullptr, nullptr, nullptr}};
PyTypeObject green_wait_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

}  // namespace

bool add_green_wait_type(PyObject* m) {
    const interned_name names[] = {{&s_sock_fd, "_sock_fd"}, {&s_green_watch, "_green_watch"}, {&s_hub, "hub"},
                                   {&s_fd, "fd"}, {&s_io, "io"}, {&s_c, "_c"}, {&s_poll, "poll"}};
    if (!intern_all(names)) return false;
    green_wait_type.tp_getset = green_wait_getset;
    green_wait_type.tp_vectorcall_offset = offsetof(green_wait_object, vectorcall);
    green_wait_type.tp_call = green_wait_tp_call;
    green_wait_type.tp_new = green_wait_new;
    if (!add_type<green_wait_object>(m, green_wait_type, "ambisql._ambisql.GeventWait",
                                     "ambisql.green.patch_gevent()'s wait callback (see green.py).",
                                     Py_TPFLAGS_HAVE_VECTORCALL))
        return false;
    return true;
}

}  // namespace ambisql::pybinding
