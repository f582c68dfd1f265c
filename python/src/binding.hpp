// What the cursor (cursor.cpp) and the connection binding (module.cpp) of ambisql._ambisql
// know of each other: plain CPython calls, no pybind11 in between.
#pragma once

#include <Python.h>

namespace ambisql::pybinding {

// _Conn, once the module is initialized.
extern PyTypeObject* conn_type;
class conn;
// The connection a _Conn `c` holds; nullptr with the exception set when not initialized.
conn* conn_of(PyObject* c) noexcept;

// Drives the operation started on _Conn `c` of connections.Connection `connection` to its
// end through the waiter in force (drive.cpp): None, or nullptr with the exception set.
PyObject* conn_wait(PyObject* connection, PyObject* c) noexcept;

// c.start_query(query, args) for a _Conn `c` and a str `query`; false with the exception
// set when it failed.
bool start_query(PyObject* c, PyObject* query, PyObject* args) noexcept;

// Whether an unbuffered result on `c` is not read to its end (no other command can start).
bool stream_pending(PyObject* c) noexcept;

// c.results(): a new reference, or nullptr with the exception set.
PyObject* results(PyObject* c) noexcept;

// c.wait(): the started operation driven to its end, blocking with the GIL released;
// false with the exception set when it failed.
bool wait(PyObject* c) noexcept;


// Adds CursorBase (the cursor's state and per-query methods) to module m; false with the
// exception set.
bool add_cursor_type(PyObject* m);
// Adds GeventWait (green_wait.cpp) to module m; false with the exception set.
bool add_green_wait_type(PyObject* m);
// Adds _set_wait and _wait (drive.cpp) to module m; false with the exception set.
bool add_drive_functions(PyObject* m);

}  // namespace ambisql::pybinding
