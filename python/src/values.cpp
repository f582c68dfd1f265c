#include "values.hpp"

#include <datetime.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>

namespace ambisql::pyconv {

namespace {

PyObject* decimal_type = nullptr;  // decimal.Decimal
// A description item: PEP 249's 7-item tuple (name, type_code, display_size,
// internal_size, precision, scale, null_ok), with the column's table alias beside it as
// an attribute (`table`, not in the sequence), for DictCursor's naming of repeated columns.
PyStructSequence_Field column_fields[] = {
    {"name", nullptr},  {"type_code", nullptr}, {"display_size", nullptr}, {"internal_size", nullptr},
    {"precision", nullptr}, {"scale", nullptr}, {"null_ok", nullptr},
    {"table", "the column's table as the query names it (its alias; '' for none)"}, {nullptr, nullptr}};
PyStructSequence_Desc column_desc = {"ambisql.Column", "A cursor.description item.", column_fields, 7};
PyTypeObject* column_item_type = nullptr;

// The Python codec for a MySQL character set name.
const char* codec_name(const std::string& cs) {
    static const struct {
        const char* mysql;
        const char* python;
    } table[] = {{"utf8mb4", "utf-8"}, {"utf8", "utf-8"},     {"utf8mb3", "utf-8"},   {"latin1", "cp1252"},
                 {"ascii", "ascii"},   {"latin2", "iso8859-2"}, {"cp1250", "cp1250"}, {"cp1251", "cp1251"},
                 {"cp1256", "cp1256"}, {"cp1257", "cp1257"},  {"greek", "iso8859-7"}, {"hebrew", "iso8859-8"},
                 {"latin5", "iso8859-9"}, {"latin7", "iso8859-13"}, {"koi8r", "koi8-r"}, {"koi8u", "koi8-u"},
                 {"big5", "big5"},     {"gbk", "gbk"},         {"gb2312", "gb2312"},   {"gb18030", "gb18030"},
                 {"sjis", "shift_jis"}, {"cp932", "cp932"},    {"ujis", "euc-jp"},     {"eucjpms", "euc-jp"},
                 {"euckr", "euc-kr"},  {"utf16", "utf-16-be"}, {"utf16le", "utf-16-le"}, {"utf32", "utf-32-be"},
                 {"ucs2", "utf-16-be"}, {"cp850", "cp850"},    {"cp852", "cp852"},     {"cp866", "cp866"},
                 {"macroman", "mac-roman"}, {"tis620", "tis-620"}, {"armscii8", "latin1"}, {"binary", "latin1"}};
    for (const auto& t : table)
        if (cs == t.mysql) return t.python;
    return "utf-8";
}

PyObject* text_to_py(std::string_view s, const text_codec& codec) {
    if (codec.raw) return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
    if (codec.utf8) return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogateescape");
    return PyUnicode_Decode(s.data(), static_cast<Py_ssize_t>(s.size()), codec.name.c_str(), "strict");
}

// A double from the text the server sent (shortest round trip, as MySQLdb gives it).
PyObject* float_from_text(std::string_view s) {
    double d = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), d);
    if (r.ec != std::errc()) {
        PyErr_Format(PyExc_ValueError, "bad floating point value from the server: %.*s", static_cast<int>(s.size()),
                     s.data());
        return nullptr;
    }
    return PyFloat_FromDouble(d);
}

PyObject* none() { Py_RETURN_NONE; }

PyObject* date_to_py(const date& d) {
    if (d.year == 0 || d.month == 0 || d.day == 0) return none();  // zero dates: None, as MySQLdb
    PyObject* o = PyDate_FromDate(d.year, d.month, d.day);
    if (!o && PyErr_ExceptionMatches(PyExc_ValueError)) {  // an invalid date the server allowed
        PyErr_Clear();
        return none();
    }
    return o;
}

PyObject* datetime_to_py(const datetime& d) {
    if (d.year == 0 || d.month == 0 || d.day == 0) return none();
    PyObject* o = PyDateTime_FromDateAndTime(d.year, d.month, d.day, d.hour, d.minute, d.second,
                                             static_cast<int>(d.microsecond));
    if (!o && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        return none();
    }
    return o;
}

PyObject* time_to_py(const sql_time& t) {
    // TIME as datetime.timedelta, as MySQLdb and PyMySQL give it (negative and > 24 h too).
    const std::int64_t us = t.total_microseconds();
    const std::int64_t day_us = 86400LL * 1000000;
    std::int64_t days = us / day_us, rest = us % day_us;
    if (rest < 0) {
        rest += day_us;
        --days;
    }
    return PyDelta_FromDSU(static_cast<int>(days), static_cast<int>(rest / 1000000), static_cast<int>(rest % 1000000));
}

bool is_decimal(PyObject* o) { return decimal_type && PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(decimal_type)); }

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

}  // namespace

bool init_values() {
    PyDateTime_IMPORT;
    if (!PyDateTimeAPI) return false;
    PyObject* mod = PyImport_ImportModule("decimal");
    if (!mod) return false;
    decimal_type = PyObject_GetAttrString(mod, "Decimal");
    Py_DECREF(mod);
    if (!decimal_type) return false;
    column_item_type = PyStructSequence_NewType(&column_desc);
    return column_item_type != nullptr;
}

PyObject* column_item_type_object() { return reinterpret_cast<PyObject*>(column_item_type); }

text_codec text_codec::for_charset(const std::string& mysql_charset) {
    text_codec c;
    c.name = codec_name(mysql_charset);
    c.utf8 = c.name == "utf-8";
    return c;
}

bool transcode(std::string& text, const text_codec& codec) {
    if (codec.utf8) return true;
    PyObject* enc = PyUnicode_Decode(text.data(), static_cast<Py_ssize_t>(text.size()), "utf-8", "strict");
    PyObject* b = enc ? PyUnicode_AsEncodedString(enc, codec.name.c_str(), "strict") : nullptr;
    Py_XDECREF(enc);
    if (!b) return false;
    text.assign(PyBytes_AS_STRING(b), static_cast<std::size_t>(PyBytes_GET_SIZE(b)));
    Py_DECREF(b);
    return true;
}

PyObject* field_to_py(const row_view& row, std::size_t i, const text_codec& codec) {
    if (row.is_null(i)) return none();
    const column& c = row.column_at(i);
    switch (c.type) {
        case column_type::bit: {  // bytes, as MySQLdb and PyMySQL give BIT
            std::string_view raw = row.raw(i);
            return PyBytes_FromStringAndSize(raw.data(), static_cast<Py_ssize_t>(raw.size()));
        }
        case column_type::float_:
        case column_type::double_: {
            value v = row[i];
            if (v.kind() == value_kind::float32) {  // binary protocol: the float's shortest text
                char buf[32];
                auto r = std::to_chars(buf, buf + sizeof buf, v.get_float());
                return float_from_text(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
            }
            if (v.kind() == value_kind::float64) return PyFloat_FromDouble(v.get_double());
            break;
        }
        default: break;
    }
    value v = row[i];
    switch (v.kind()) {
        case value_kind::null: return none();
        case value_kind::int64: return PyLong_FromLongLong(v.get_int());
        case value_kind::uint64: return PyLong_FromUnsignedLongLong(v.get_uint());
        case value_kind::float32:
        case value_kind::float64: return PyFloat_FromDouble(v.get_double());
        case value_kind::decimal: {
            std::string_view t = v.get_text();
            PyObject* s = PyUnicode_FromStringAndSize(t.data(), static_cast<Py_ssize_t>(t.size()));
            if (!s) return nullptr;
            PyObject* d = PyObject_CallOneArg(decimal_type, s);
            Py_DECREF(s);
            return d;
        }
        case value_kind::string: return text_to_py(v.get_text(), codec);
        case value_kind::blob: {
            std::string_view t = v.get_text();
            return PyBytes_FromStringAndSize(t.data(), static_cast<Py_ssize_t>(t.size()));
        }
        case value_kind::date: return date_to_py(v.get_date());
        case value_kind::datetime: return datetime_to_py(v.get_datetime());
        case value_kind::time: return time_to_py(v.get_time());
    }
    return none();
}

PyObject* row_to_tuple(const row_view& row, const text_codec& codec) {
    const std::size_t n = row.size();
    PyObject* t = PyTuple_New(static_cast<Py_ssize_t>(n));
    if (!t) return nullptr;
    bool atoms = true;  // no value the garbage collector tracks (ints, strs, Decimals, dates...)
    for (std::size_t i = 0; i < n; ++i) {
        PyObject* v;
        try {
            v = field_to_py(row, i, codec);
        } catch (const std::exception& e) {  // a value the server sent that does not parse
            PyErr_SetString(PyExc_ValueError, e.what());
            v = nullptr;
        }
        if (!v) {
            Py_DECREF(t);
            return nullptr;
        }
        if (atoms && PyObject_IS_GC(v) && PyObject_GC_IsTracked(v)) atoms = false;
        PyTuple_SET_ITEM(t, static_cast<Py_ssize_t>(i), v);
    }
    // A tuple of such values can be in no reference cycle: untracked now (as CPython's
    // collector would do on its first pass over it), the rows of a large result cost the
    // collections that their allocations trigger nothing.
    if (atoms) PyObject_GC_UnTrack(t);
    return t;
}

PyObject* description(std::span<const column> cols) {
    if (cols.empty()) return none();
    PyObject* d = PyTuple_New(static_cast<Py_ssize_t>(cols.size()));
    if (!d) return nullptr;
    for (std::size_t i = 0; i < cols.size(); ++i) {
        const column& c = cols[i];
        PyObject* item = PyStructSequence_New(column_item_type);
        PyObject* fields[] = {
            PyUnicode_DecodeUTF8(c.name.data(), static_cast<Py_ssize_t>(c.name.size()), "replace"),
            PyLong_FromLong(static_cast<long>(c.type)),
            Py_NewRef(Py_None),
            PyLong_FromUnsignedLong(c.length),
            PyLong_FromUnsignedLong(c.length),
            PyLong_FromLong(c.decimals),
            Py_NewRef((c.flags & column_flag::not_null) ? Py_False : Py_True),
            PyUnicode_DecodeUTF8(c.table.data(), static_cast<Py_ssize_t>(c.table.size()), "replace")};
        bool ok = item != nullptr;
        for (Py_ssize_t f = 0; f < 8; ++f) {
            ok = ok && fields[f];
            if (item && fields[f])
                PyStructSequence_SetItem(item, f, fields[f]);  // (steals it)
            else
                Py_XDECREF(fields[f]);
        }
        if (!ok) {
            Py_XDECREF(item);
            Py_DECREF(d);
            return nullptr;
        }
        PyTuple_SET_ITEM(d, static_cast<Py_ssize_t>(i), item);
    }
    return d;
}

PyObject* description_cache::get(std::span<const column> cols) {
    if (cols.empty()) return none();
    scratch_.clear();  // what description() reads of each column
    for (const column& c : cols) {
        const std::uint32_t fields[] = {static_cast<std::uint32_t>(c.name.size()), static_cast<std::uint32_t>(c.type),
                                        c.length, c.decimals, (c.flags & column_flag::not_null) ? 1u : 0u};
        const auto table_size = static_cast<std::uint32_t>(c.table.size());
        scratch_.append(reinterpret_cast<const char*>(fields), sizeof fields);
        scratch_.append(c.name);
        scratch_.append(reinterpret_cast<const char*>(&table_size), sizeof table_size);
        scratch_.append(c.table);
    }
    if (last_ && scratch_ == key_) {
        Py_INCREF(last_);
        return last_;
    }
    PyObject* d = description(cols);
    if (!d) return nullptr;
    Py_INCREF(d);
    Py_XSETREF(last_, d);
    key_.swap(scratch_);
    return d;
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
    set_error(PyExc_TypeError, "cannot send a value of type " + type_name(o) + " as a query parameter");
    return false;
}

}  // namespace ambisql::pyconv
