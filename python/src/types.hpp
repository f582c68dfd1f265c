// What the module's C types (CursorBase, GeventWait) share: objects whose references are
// one array `f`, and how such a static type is readied and added to the module.
#pragma once

#include <Python.h>

#include <cstddef>
#include <cstring>

namespace ambisql::pybinding {

// The attribute names a type's C code looks up, interned once when the module loads.
struct interned_name {
    PyObject** name;
    const char* text;
};
template <std::size_t N>
bool intern_all(const interned_name (&names)[N]) {
    for (const interned_name& i : names)
        if (!(*i.name = PyUnicode_InternFromString(i.text))) return false;
    return true;
}

// The garbage collector's view of an object whose references are its array `f`.
template <class T>
int fields_traverse(PyObject* self, visitproc visit, void* arg) {
    for (PyObject* v : reinterpret_cast<T*>(self)->f) Py_VISIT(v);
    return 0;
}
template <class T>
int fields_clear(PyObject* self) {
    for (PyObject*& v : reinterpret_cast<T*>(self)->f) Py_CLEAR(v);
    return 0;
}
template <class T>
void fields_dealloc(PyObject* self) {
    PyObject_GC_UnTrack(self);
    fields_clear<T>(self);
    Py_TYPE(self)->tp_free(self);
}
// obj.name into *out if it exists (a new reference), else *out = nullptr without an
// exception; -1 with the exception set on another failure. (No AttributeError is made.)
inline int optional_attr(PyObject* obj, PyObject* name, PyObject** out) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(obj, name, out);
#else
    return _PyObject_LookupAttr(obj, name, out);  // (3.13's name above)
#endif
}

// Readies static type `t` (objects of T; its own slots set already) and adds it to m.
template <class T>
bool add_type(PyObject* m, PyTypeObject& t, const char* qualified_name, const char* doc, unsigned long flags) {
    t.tp_name = qualified_name;
    t.tp_doc = doc;
    t.tp_basicsize = sizeof(T);
    t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | flags;
    t.tp_dealloc = fields_dealloc<T>;
    t.tp_traverse = fields_traverse<T>;
    t.tp_clear = fields_clear<T>;
    if (PyType_Ready(&t) < 0) return false;
    Py_INCREF(&t);
    if (PyModule_AddObject(m, std::strrchr(qualified_name, '.') + 1, reinterpret_cast<PyObject*>(&t)) < 0) {
        Py_DECREF(&t);
        return false;
    }
    return true;
}


}  // namespace ambisql::pybinding
