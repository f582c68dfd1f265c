// Python values as the core takes them: parameters interpolated as SQL literals (the
// core's escaping rules), pyformat turned into the core's ? placeholders, and bound
// arguments for prepared statements. (Rows to Python values: values.cpp.)
#include "values.hpp"

#include <datetime.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>

namespace ambisql::pyconv {

namespace {

bool is_decimal(PyObject* o) {
    PyObject* t = decimal_type_object();
    return t && PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(t));
}

void set_error(PyObject* type, const std::string& msg) { PyErr_SetString(type, msg.c_str()); }

// UTF-8 of a str (a view into the object, valid while it lives).
bool utf8_of(PyObject* s, std::string_view& out) {
    Py_ssize_t n = 0;
    const char* p = PyUnicode_AsUTF8AndSize(s, &n);
    if (!p) return false;
    out = std::string_view(p, static_cast<std::size_t>(n));
    return true;
}

bool bytes_of(PyObject* o, std::string_view& out, PyObject*& owner) {
    owner = nullptr;
    if (PyBytes_Check(o)) {
        out = std::string_view(PyBytes_AS_STRING(o), static_cast<std::size_t>(PyBytes_GET_SIZE(o)));
        return true;
    }
    if (PyByteArray_Check(o)) {
        out = std::string_view(PyByteArray_AS_STRING(o), static_cast<std::size_t>(PyByteArray_GET_SIZE(o)));
        return true;
    }
    if (PyMemoryView_Check(o)) {
        owner = PyBytes_FromObject(o);  // a contiguous copy
        if (!owner) return false;
        out = std::string_view(PyBytes_AS_STRING(owner), static_cast<std::size_t>(PyBytes_GET_SIZE(owner)));
        return true;
    }
    return false;
}

// A date, datetime, time or timedelta parameter as the core's value: 1; not one of those:
// 0; -1 with ValueError set for a timedelta beyond what a TIME can hold.
int temporal_arg(PyObject* o, sql_arg& out) {
    if (PyDateTime_Check(o)) {
        datetime d;
        d.year = static_cast<std::uint16_t>(PyDateTime_GET_YEAR(o));
        d.month = static_cast<std::uint8_t>(PyDateTime_GET_MONTH(o));
        d.day = static_cast<std::uint8_t>(PyDateTime_GET_DAY(o));
        d.hour = static_cast<std::uint8_t>(PyDateTime_DATE_GET_HOUR(o));
        d.minute = static_cast<std::uint8_t>(PyDateTime_DATE_GET_MINUTE(o));
        d.second = static_cast<std::uint8_t>(PyDateTime_DATE_GET_SECOND(o));
        d.microsecond = static_cast<std::uint32_t>(PyDateTime_DATE_GET_MICROSECOND(o));
        out = sql_arg(d);
        return 1;
    }
    if (PyDate_Check(o)) {
        date d;
        d.year = static_cast<std::uint16_t>(PyDateTime_GET_YEAR(o));
        d.month = static_cast<std::uint8_t>(PyDateTime_GET_MONTH(o));
        d.day = static_cast<std::uint8_t>(PyDateTime_GET_DAY(o));
        out = sql_arg(d);
        return 1;
    }
    if (PyTime_Check(o)) {
        sql_time t;
        t.hours = static_cast<std::uint32_t>(PyDateTime_TIME_GET_HOUR(o));
        t.minute = static_cast<std::uint8_t>(PyDateTime_TIME_GET_MINUTE(o));
        t.second = static_cast<std::uint8_t>(PyDateTime_TIME_GET_SECOND(o));
        t.microsecond = static_cast<std::uint32_t>(PyDateTime_TIME_GET_MICROSECOND(o));
        out = sql_arg(t);
        return 1;
    }
    if (PyDelta_Check(o)) {
        // Up to 999,999,999 days, which in microseconds overflows int64: refused beyond the
        // 9,999,999 hours the decoders take (a server's TIME holds 838:59:59).
        const std::int64_t days = PyDateTime_DELTA_GET_DAYS(o);
        if (days > 416666 || days < -416667) {
            PyErr_SetString(PyExc_ValueError, "timedelta out of range for a TIME parameter");
            return -1;
        }
        std::int64_t us = (days * 86400 + PyDateTime_DELTA_GET_SECONDS(o)) * 1000000 + PyDateTime_DELTA_GET_MICROSECONDS(o);
        sql_time t;
        t.negative = us < 0;
        if (us < 0) us = -us;
        t.microsecond = static_cast<std::uint32_t>(us % 1000000);
        us /= 1000000;
        t.second = static_cast<std::uint8_t>(us % 60);
        us /= 60;
        t.minute = static_cast<std::uint8_t>(us % 60);
        t.hours = static_cast<std::uint32_t>(us / 60);
        out = sql_arg(t);
        return 1;
    }
    return 0;
}

// Integer text of a Python int of any size.
bool int_text(PyObject* o, std::string& out) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return false;
    if (!overflow) {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, r.ptr);
        return true;
    }
    // The value's own digits: an int subclass's __str__ could put anything into the SQL.
    PyObject* s = PyNumber_ToBase(o, 10);
    if (!s) return false;
    std::string_view t;
    bool ok = utf8_of(s, t);
    if (ok) out.append(t);
    Py_DECREF(s);
    return ok;
}

// Decimal's text in positional notation (format(o, "f"), as MySQLdb sends it: an exact
// literal; str() may give an exponent, which makes a DOUBLE), checked to be a finite
// number (it goes into SQL unquoted).
bool decimal_text(PyObject* o, std::string& out) {
    static PyObject* const positional = PyUnicode_InternFromString("f");
    if (!positional) return PyErr_Occurred() ? false : (PyErr_NoMemory(), false);
    PyObject* s = PyObject_Format(o, positional);
    if (!s) return false;
    std::string_view t;
    bool ok = utf8_of(s, t);
    if (ok) {
        bool digits = !t.empty();
        for (char c : t)
            if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.' || c == 'E' ||
                  c == 'e'))
                digits = false;
        if (!digits) {
            set_error(PyExc_ValueError, "cannot send a non-finite Decimal (" + std::string(t) + ")");
            ok = false;
        } else {
            out.append(t);
        }
    }
    Py_DECREF(s);
    return ok;
}

std::string type_name(PyObject* o) { return Py_TYPE(o)->tp_name; }

PyObject* uuid_type = nullptr;  // uuid.UUID

// A uuid.UUID as its text (a new reference: '12345678-1234-...', as PyMySQL sends it and as
// SQLAlchemy 2.1 passes it for a Uuid column); nullptr, no exception set, for anything else.
PyObject* uuid_text(PyObject* o) {
    if (!uuid_type || !PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(uuid_type))) return nullptr;
    return PyObject_Str(o);
}

}  // namespace

bool init_params() {
    PyDateTime_IMPORT;  // (the datetime C API is per translation unit)
    if (!PyDateTimeAPI) return false;
    PyObject* mod = PyImport_ImportModule("uuid");
    if (!mod) return false;
    uuid_type = PyObject_GetAttrString(mod, "UUID");
    Py_DECREF(mod);
    return uuid_type != nullptr;
}

bool append_py_literal(std::string& out, PyObject* o, const escaping& e) {
    if (o == Py_None) {
        out += "NULL";
        return true;
    }
    if (PyBool_Check(o)) {
        out += o == Py_True ? "1" : "0";
        return true;
    }
    if (PyLong_Check(o)) return int_text(o, out);
    if (PyFloat_Check(o)) {  // the core's DOUBLE literal (with an exponent: not DECIMAL)
        if (append_literal(out, sql_arg(PyFloat_AS_DOUBLE(o)), e)) {
            set_error(PyExc_ValueError, "cannot send a non-finite float");
            return false;
        }
        return true;
    }
    if (PyUnicode_Check(o)) {
        std::string_view s;
        if (!utf8_of(o, s)) return false;
        if (auto ec = append_string_literal(out, s, e)) {
            set_escape_error(ec);
            return false;
        }
        return true;
    }
    if (is_decimal(o)) return decimal_text(o, out);
    std::string_view b;
    PyObject* owner = nullptr;
    if (bytes_of(o, b, owner)) {
        auto ec = append_literal(out, sql_arg(bytes{std::as_bytes(std::span(b.data(), b.size()))}), e);
        Py_XDECREF(owner);
        if (ec) set_error(PyExc_ValueError, ec.message());
        return !ec;
    }
    if (PyErr_Occurred()) return false;
    sql_arg t(nullptr);
    if (const int r = temporal_arg(o, t)) {
        if (r < 0) return false;
        append_literal(out, t, e);
        return true;
    }
    if (PyList_Check(o) || PyTuple_Check(o) || PyAnySet_Check(o)) {  // IN (%s)
        // Nested past the interpreter's recursion limit, or a list that contains itself:
        // RecursionError, as PyMySQL's Python recursion gives (not the C stack's end).
        if (Py_EnterRecursiveCall(" in a query parameter")) return false;
        PyObject* seq = PySequence_Tuple(o);  // (a snapshot: a value's __str__ may change a list)
        bool ok = seq != nullptr;
        if (ok) {
            const Py_ssize_t n = PyTuple_GET_SIZE(seq);
            out += '(';
            for (Py_ssize_t i = 0; ok && i < n; ++i) {
                if (i) out += ',';
                ok = append_py_literal(out, PyTuple_GET_ITEM(seq, i), e);
            }
            out += ')';
            Py_DECREF(seq);
        }
        Py_LeaveRecursiveCall();
        return ok;
    }
    if (PyObject* text = uuid_text(o)) {
        const bool ok = append_py_literal(out, text, e);
        Py_DECREF(text);
        return ok;
    }
    if (PyErr_Occurred()) return false;
    set_error(PyExc_TypeError, "cannot send a value of type " + type_name(o) + " as a query parameter");
    return false;
}

bool format_pyformat(std::string& out, std::string_view sql, PyObject* args, const escaping& e) {
    if (args == Py_None || !args) {
        out.append(sql);
        return true;
    }
    const bool mapping = PyDict_Check(args) || (!PySequence_Check(args) && PyMapping_Check(args));
    PyObject* seq = nullptr;
    Py_ssize_t n = 0, next = 0;
    if (!mapping) {
        if (PyUnicode_Check(args) || PyBytes_Check(args) || !PySequence_Check(args)) {
            // One bare value stands for a one-element tuple (as PyMySQL accepts it).
            seq = PyTuple_Pack(1, args);
        } else {
            // A snapshot: a Decimal subclass's __str__, called while formatting, could change
            // a list under the loop.
            seq = PySequence_Tuple(args);
        }
        if (!seq) return false;
        n = PyTuple_GET_SIZE(seq);
    }
    out.reserve(out.size() + sql.size() + 16);
    bool ok = true;
    for (std::size_t i = 0; ok && i < sql.size(); ++i) {
        const char c = sql[i];
        if (c != '%') {
            out += c;
            continue;
        }
        if (i + 1 >= sql.size()) {
            set_error(PyExc_ValueError, "incomplete format: a lone % at the end of the query");
            ok = false;
            break;
        }
        const char f = sql[++i];
        if (f == '%') {
            out += '%';
        } else if (f == 's' && !mapping) {
            if (next >= n) {
                set_error(PyExc_TypeError, "not enough arguments for format string");
                ok = false;
            } else {
                ok = append_py_literal(out, PyTuple_GET_ITEM(seq, next++), e);
            }
        } else if (f == '(' && mapping) {
            const std::size_t close = sql.find(')', i);
            if (close == std::string_view::npos || close + 1 >= sql.size() || sql[close + 1] != 's') {
                set_error(PyExc_ValueError, "bad %(name)s placeholder in the query");
                ok = false;
                break;
            }
            std::string_view name = sql.substr(i + 1, close - i - 1);
            PyObject* key = PyUnicode_FromStringAndSize(name.data(), static_cast<Py_ssize_t>(name.size()));
            PyObject* v = key ? PyObject_GetItem(args, key) : nullptr;
            Py_XDECREF(key);
            if (!v) {
                ok = false;
            } else {
                ok = append_py_literal(out, v, e);
                Py_DECREF(v);
            }
            i = close + 1;
        } else {
            set_error(PyExc_ValueError, std::string("unsupported format character '") + f +
                                            "' in the query (use %s, %(name)s, or %% for a percent sign)");
            ok = false;
        }
    }
    if (ok && !mapping && next != n) {
        set_error(PyExc_TypeError, "not all arguments converted during string formatting");
        ok = false;
    }
    Py_XDECREF(seq);
    return ok;
}

bool qmark_from_pyformat(std::string& out, std::string_view sql) {
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (c != '%') {
            out += c;
            continue;
        }
        const char f = i + 1 < sql.size() ? sql[i + 1] : '\0';
        if (f == '%') {
            out += '%';
        } else if (f == 's') {
            out += '?';
        } else {
            set_error(PyExc_ValueError, "prepared statements take %s placeholders with a sequence of values");
            return false;
        }
        ++i;
    }
    return true;
}

bound_args::~bound_args() {
    for (PyObject* o : keep_) Py_DECREF(o);
}

bool bound_args::add(PyObject* o) {
    if (o == Py_None) {
        args_.emplace_back(nullptr);
        return true;
    }
    if (PyBool_Check(o)) {
        args_.emplace_back(o == Py_True ? 1 : 0);
        return true;
    }
    if (PyLong_Check(o)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred()) return false;
        if (!overflow) {
            args_.emplace_back(static_cast<std::int64_t>(v));
            return true;
        }
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            set_error(PyExc_OverflowError, "an int outside the range of a 64-bit column");
            return false;
        }
        args_.emplace_back(static_cast<std::uint64_t>(u));
        return true;
    }
    if (PyFloat_Check(o)) {
        args_.emplace_back(PyFloat_AS_DOUBLE(o));
        return true;
    }
    if (PyUnicode_Check(o)) {
        if (codec_ && !codec_->utf8) {
            PyObject* b = PyUnicode_AsEncodedString(o, codec_->name.c_str(), "strict");
            if (!b) return false;
            keep_.push_back(b);
            args_.emplace_back(std::string_view(PyBytes_AS_STRING(b), static_cast<std::size_t>(PyBytes_GET_SIZE(b))));
            return true;
        }
        std::string_view s;
        if (!utf8_of(o, s)) return false;
        Py_INCREF(o);
        keep_.push_back(o);
        args_.emplace_back(s);
        return true;
    }
    if (is_decimal(o)) {  // sent as text: the server converts it exactly
        std::string t;
        if (!decimal_text(o, t)) return false;
        scratch_.push_back(std::move(t));
        args_.emplace_back(std::string_view(scratch_.back()));
        return true;
    }
    std::string_view b;
    PyObject* owner = nullptr;
    if (bytes_of(o, b, owner)) {
        if (!owner) Py_INCREF(o);
        keep_.push_back(owner ? owner : o);
        args_.emplace_back(bytes{std::as_bytes(std::span(b.data(), b.size()))});
        return true;
    }
    if (PyErr_Occurred()) return false;
    sql_arg t(nullptr);
    if (const int r = temporal_arg(o, t)) {
        if (r < 0) return false;
        args_.push_back(t);
        return true;
    }
    if (PyObject* text = uuid_text(o)) {
        const bool ok = add(text);  // (kept while the arguments are)
        Py_DECREF(text);
        return ok;
    }
    if (PyErr_Occurred()) return false;
    set_error(PyExc_TypeError, "cannot send a value of type " + type_name(o) + " as a query parameter");
    return false;
}
}  // namespace ambisql::pyconv
