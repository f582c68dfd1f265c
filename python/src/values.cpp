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
    return column_item_type != nullptr && init_params();
}

PyObject* decimal_type_object() { return decimal_type; }

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

}  // namespace ambisql::pyconv
