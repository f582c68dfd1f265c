// ambisql._ambisql.CursorBase: a PEP 249 cursor's state in C fields, and the methods every
// buffered text query calls (execute, fetchall, and the steps of execute that
// ambisql.aio's cursor calls between its own waits). ambisql/cursors.py's Cursor is its
// Python subclass, which has the rest (the general paths: streaming, prepared, async,
// several resultsets, the other fetches). In Python these per-query steps were a quarter
// of a point select's client instructions under gevent, most of it attribute traffic;
// here they are field stores. The fields are the attributes (cursor.rowcount, ._rows), so
// Python code sees and sets the same values.
#include <Python.h>
#include <structmember.h>

#include <cstddef>
#include <cstring>
#include <initializer_list>

#include "binding.hpp"
#include "types.hpp"

namespace ambisql::pybinding {
namespace {

enum field {
    f_connection,
    f_description,
    f_rowcount,
    f_lastrowid,
    f_rownumber,
    f_arraysize,
    f_rows,      // _rows: the current resultset's rows (a tuple), or None
    f_sets,      // _sets: the last query's resultsets, as _Conn.results() gives them
    f_set,       // _set: the current one's index in _sets
    f_executed,  // _executed: the last query's text
    f_warnings,  // _warnings
    f_pending,   // _pending: an async query started whose results are not taken yet
    f_closed,    // _closed
    f_stream,    // _stream: unbuffered (SSCursor)
    f_prepared,  // _prepared: the binary protocol
    n_fields
};
constexpr const char* field_names[n_fields] = {
    "connection", "description", "rowcount", "lastrowid", "rownumber", "arraysize", "_rows",     "_sets",
    "_set",       "_executed",   "_warnings", "_pending", "_closed",   "_stream",   "_prepared"};

struct cursor_object {
    PyObject_HEAD
    PyObject* f[n_fields];  // never null but after a `del` from Python
};

PyObject *s_async, *s_c, *s_execute, *s_fetchall;  // interned names
PyObject *minus_one, *zero, *one;
PyTypeObject* plain_cursor = nullptr;  // cursors.Cursor: fetchall()'s shortcut is for it exactly

cursor_object* cur(PyObject* self) { return reinterpret_cast<cursor_object*>(self); }

void put(cursor_object* c, field i, PyObject* v) {
    Py_INCREF(v);
    Py_XSETREF(c->f[i], v);
}
PyObject* get(cursor_object* c, field i) { return c->f[i] ? c->f[i] : Py_None; }  // borrowed
int truth(PyObject* v) {
    if (v == Py_True) return 1;
    if (v == Py_False || v == Py_None || v == nullptr) return 0;
    return PyObject_IsTrue(v);
}

PyObject* cursor_new(PyTypeObject* type, PyObject*, PyObject*) {
    auto* c = reinterpret_cast<cursor_object*>(type->tp_alloc(type, 0));
    if (!c) return nullptr;
    for (PyObject*& v : c->f) v = Py_NewRef(Py_None);
    put(c, f_rowcount, minus_one);
    put(c, f_rownumber, zero);
    put(c, f_arraysize, one);
    put(c, f_set, zero);
    put(c, f_warnings, zero);
    for (field i : {f_pending, f_closed, f_stream, f_prepared}) put(c, i, Py_False);
    return reinterpret_cast<PyObject*>(c);
}

// Starts `query` as a buffered text query if the common case holds: 1 with *owner and *c
// set (new references: the Python connection and its _Conn), 0 when the general path
// (Cursor._execute) is needed, -1 with the exception set.
int quick_start(cursor_object* self, PyObject* query, PyObject* args, PyObject** owner, PyObject** c) {
    if (!PyUnicode_CheckExact(query)) return 0;  // (bytes: decoded by the general path)
    for (field i : {f_stream, f_prepared, f_closed}) {
        const int t = truth(self->f[i]);
        if (t != 0) return t < 0 ? -1 : 0;
    }
    PyObject* conn = get(self, f_connection);
    if (conn == Py_None) return 0;
    Py_INCREF(conn);
    PyObject* async = PyObject_GetAttr(conn, s_async);
    const int t = async ? truth(async) : -1;
    Py_XDECREF(async);
    PyObject* k = t == 0 ? PyObject_GetAttr(conn, s_c) : nullptr;
    // (None: closed; an unbuffered result left unread: the general path says or drains it)
    if (!k || Py_TYPE(k) != conn_type || stream_pending(k)) {
        Py_XDECREF(k);
        Py_DECREF(conn);
        return PyErr_Occurred() ? -1 : 0;
    }
    put(self, f_rows, Py_None);
    put(self, f_sets, Py_None);
    put(self, f_description, Py_None);
    put(self, f_rowcount, minus_one);
    put(self, f_rownumber, zero);
    put(self, f_executed, query);
    if (!start_query(k, query, args)) {
        Py_DECREF(k);
        Py_DECREF(conn);
        return -1;
    }
    *owner = conn;
    *c = k;
    return 1;
}

// _load(set): a resultset (description, rows, affected, insert_id, warnings) becomes the
// current one; returns its rowcount (rows, or affected rows without a result).
PyObject* load(cursor_object* self, PyObject* s) {
    if (!PyTuple_Check(s) || PyTuple_GET_SIZE(s) != 5) {
        PyErr_SetString(PyExc_TypeError, "_load(set): a (description, rows, affected, insert_id, warnings) tuple");
        return nullptr;
    }
    PyObject *rows = PyTuple_GET_ITEM(s, 1), *affected = PyTuple_GET_ITEM(s, 2), *insert_id = PyTuple_GET_ITEM(s, 3);
    put(self, f_description, PyTuple_GET_ITEM(s, 0));
    put(self, f_rows, rows);
    put(self, f_rownumber, zero);
    put(self, f_warnings, PyTuple_GET_ITEM(s, 4));
    if (rows == Py_None) {
        put(self, f_rowcount, affected);
        put(self, f_lastrowid, insert_id);
        return Py_NewRef(affected);
    }
    const Py_ssize_t n = PyTuple_CheckExact(rows) ? PyTuple_GET_SIZE(rows) : PyObject_Size(rows);
    if (n < 0) return nullptr;
    PyObject* count = PyLong_FromSsize_t(n);
    if (!count) return nullptr;
    Py_XSETREF(self->f[f_rowcount], Py_NewRef(count));
    const int has_id = truth(insert_id);  // (a result set has none: None, as PyMySQL's lastrowid)
    if (has_id < 0) {
        Py_DECREF(count);
        return nullptr;
    }
    put(self, f_lastrowid, has_id ? insert_id : Py_None);
    return count;
}

// _quick_take(c): the finished query's resultsets become the cursor's; returns rowcount.
PyObject* quick_take(cursor_object* self, PyObject* c) {
    if (Py_TYPE(c) != conn_type) {
        PyErr_SetString(PyExc_TypeError, "_quick_take(c: _Conn)");
        return nullptr;
    }
    PyObject* sets = results(c);
    if (!sets) return nullptr;
    Py_XSETREF(self->f[f_sets], sets);
    put(self, f_set, zero);
    if (PyList_CheckExact(sets) && PyList_GET_SIZE(sets) > 0) {
        PyObject* first = Py_NewRef(PyList_GET_ITEM(sets, 0));  // (whatever the stores release)
        PyObject* r = load(self, first);
        Py_DECREF(first);
        return r;
    }
    return Py_NewRef(get(self, f_rowcount));
}

// execute(query, args=None). Not instrumented by AddressSanitizer: a gevent greenlet's
// switch inside conn._wait() saves this frame by copying the stack with memcpy, which ASan
// would report for the frame's redzones (as for green_wait.cpp's gevent_read_once).
__attribute__((no_sanitize("address"))) PyObject* cursor_execute(PyObject* self, PyObject* const* args,
                                                                 Py_ssize_t nargs, PyObject* kwnames) {
    // (query, args=None), by position or by name, as MySQLdb's and PyMySQL's
    PyObject* given[2] = {nargs > 0 ? args[0] : nullptr, nargs > 1 ? args[1] : nullptr};
    bool bad = nargs > 2;
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw && !bad; ++i) {
        PyObject* name = PyTuple_GET_ITEM(kwnames, i);
        const int slot = PyUnicode_CompareWithASCIIString(name, "query") == 0  ? 0
                         : PyUnicode_CompareWithASCIIString(name, "args") == 0 ? 1
                                                                                : -1;
        bad = slot < 0 || given[slot] != nullptr;
        if (!bad) given[slot] = args[nargs + i];
    }
    if (bad || !given[0]) {
        PyErr_SetString(PyExc_TypeError, "execute(query, args=None)");
        return nullptr;
    }
    PyObject* query = given[0];
    PyObject* params = given[1] ? given[1] : Py_None;
    PyObject *conn = nullptr, *c = nullptr;
    const int started = quick_start(cur(self), query, params, &conn, &c);
    if (started < 0) return nullptr;
    if (started == 0) {
        PyObject* call[] = {self, query, params};
        return PyObject_VectorcallMethod(s_execute, call, 3, nullptr);
    }
    PyObject* r = conn_wait(conn, c);  // (blocking, a wait callback, a hub)
    Py_DECREF(conn);
    if (r) {
        Py_DECREF(r);
        r = quick_take(cur(self), c);
    }
    Py_DECREF(c);
    return r;
}

// _quick_start(query, args): the common case started, returning the _Conn; None when the
// general path is needed.
PyObject* cursor_quick_start(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_quick_start(query, args)");
        return nullptr;
    }
    PyObject *conn = nullptr, *c = nullptr;
    const int started = quick_start(cur(self), args[0], args[1], &conn, &c);
    if (started < 0) return nullptr;
    if (started == 0) Py_RETURN_NONE;
    Py_DECREF(conn);
    return c;
}
PyObject* cursor_quick_take(PyObject* self, PyObject* c) { return quick_take(cur(self), c); }
PyObject* cursor_load(PyObject* self, PyObject* s) { return load(cur(self), s); }

// fetchall(): for Cursor itself, the rows execute() read when none was fetched yet;
// everything else through _fetchall() (the Python general path, subclasses' row types).
PyObject* cursor_fetchall(PyObject* self, PyObject*) {
    cursor_object* c = cur(self);
    if (Py_TYPE(self) == plain_cursor) {
        PyObject* rows = get(c, f_rows);
        PyObject* at = get(c, f_rownumber);
        int overflow = 0;
        if (PyTuple_CheckExact(rows) && PyLong_CheckExact(at) && PyLong_AsLongAndOverflow(at, &overflow) == 0 &&
            !overflow && truth(get(c, f_pending)) == 0) {
            PyObject* n = PyLong_FromSsize_t(PyTuple_GET_SIZE(rows));
            if (!n) return nullptr;
            Py_INCREF(rows);  // (before the store below may drop the last other reference)
            Py_XSETREF(c->f[f_rownumber], n);
            return rows;
        }
        if (PyErr_Occurred()) return nullptr;
    }
    return PyObject_CallMethodNoArgs(self, s_fetchall);
}

// _set_plain_cursor(cls): cursors.Cursor, for fetchall()'s shortcut.
PyObject* set_plain_cursor(PyObject*, PyObject* cls) {
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "_set_plain_cursor(cls: type)");
        return nullptr;
    }
    Py_INCREF(cls);
    Py_XSETREF(plain_cursor, reinterpret_cast<PyTypeObject*>(cls));
    Py_RETURN_NONE;
}

template <class F>
PyCFunction fn(F f) {
    return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}
PyMethodDef cursor_methods[] = {
    {"execute", fn(&cursor_execute), METH_FASTCALL | METH_KEYWORDS,
     "execute(query, args=None): runs `query` with `args` interpolated (%s, %(name)s); returns the row count."},
    {"fetchall", fn(&cursor_fetchall), METH_NOARGS, "fetchall(): every row left, as a tuple."},
    {"_quick_start", fn(&cursor_quick_start), METH_FASTCALL, nullptr},
    {"_quick_take", fn(&cursor_quick_take), METH_O, nullptr},
    {"_load", fn(&cursor_load), METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr}};
PyMethodDef module_functions[] = {{"_set_plain_cursor", fn(&set_plain_cursor), METH_O, nullptr},
                                  {nullptr, nullptr, 0, nullptr}};

PyMemberDef cursor_members[n_fields + 1];
PyTypeObject cursor_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

}  // namespace

bool add_cursor_type(PyObject* m) {
    const interned_name names[] = {
        {&s_async, "_async"}, {&s_c, "_c"}, {&s_execute, "_execute"}, {&s_fetchall, "_fetchall"}};
    if (!intern_all(names)) return false;
    minus_one = PyLong_FromLong(-1);
    zero = PyLong_FromLong(0);
    one = PyLong_FromLong(1);
    if (!minus_one || !zero || !one) return false;
    for (int i = 0; i < n_fields; ++i)
        cursor_members[i] = {field_names[i], T_OBJECT_EX,
                             static_cast<Py_ssize_t>(offsetof(cursor_object, f) + sizeof(PyObject*) * i), 0, nullptr};
    cursor_members[n_fields] = {nullptr, 0, 0, 0, nullptr};
    cursor_type.tp_new = cursor_new;
    cursor_type.tp_methods = cursor_methods;
    cursor_type.tp_members = cursor_members;
    if (!add_type<cursor_object>(m, cursor_type, "ambisql._ambisql.CursorBase",
                                 "A cursor's state and per-query methods (ambisql.cursors.Cursor is the cursor).",
                                 Py_TPFLAGS_BASETYPE))
        return false;
    return PyModule_AddFunctions(m, module_functions) == 0;
}

}  // namespace ambisql::pybinding
