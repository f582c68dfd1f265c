#pragma once
// Python values <-> the core's: rows to tuples (the hot path, on the CPython API;
// values.cpp), parameters to SQL literals or bound arguments (params.cpp).
#include <Python.h>

#include <deque>
#include <string>
#include <vector>

#include "ambisql/format.hpp"
#include "ambisql/resultset.hpp"
#include "ambisql/row.hpp"

namespace ambisql::pyconv {

// Imports what the conversions need (datetime C API, decimal.Decimal). Once, at import.
bool init_values();
// The type of cursor.description's items (ambisql.Column), once init_values() succeeded.
PyObject* column_item_type_object();
// decimal.Decimal (borrowed), once init_values() succeeded.
PyObject* decimal_type_object();
// params.cpp's part of init_values().
bool init_params();

// How text columns are decoded: the connection's character set as a Python codec name
// ("utf-8" for the utf8 family, which takes the fast path).
struct text_codec {
    std::string name = "utf-8";
    bool utf8 = true;
    bool raw = false;  // text values as bytes, undecoded (connect(use_unicode=False))
    static text_codec for_charset(const std::string& mysql_charset);
};

// UTF-8 text re-encoded in `codec` (for a connection whose character set is not utf8);
// false with an exception set when it has no such characters.
bool transcode(std::string& text, const text_codec& codec);

// A new reference to the Python value of field i, or nullptr with an exception set.
PyObject* field_to_py(const row_view& row, std::size_t i, const text_codec& codec);
// A new tuple of the row's values, or nullptr with an exception set.
PyObject* row_to_tuple(const row_view& row, const text_codec& codec);
// PEP 249 description: a tuple of 7-tuples; None when the result has no columns.
PyObject* description(std::span<const column> cols);

// description() that hands out the previous tuple again while the columns it describes
// are the same (the usual case: one statement run over and over on a connection).
class description_cache {
public:
    description_cache() = default;
    description_cache(const description_cache&) = delete;
    description_cache& operator=(const description_cache&) = delete;
    ~description_cache() { Py_XDECREF(last_); }  // (with the GIL: its owner is a Python object)
    PyObject* get(std::span<const column> cols);  // a new reference; nullptr with an exception

private:
    std::string key_, scratch_;
    PyObject* last_ = nullptr;
};

// Appends `obj` as an SQL literal for this connection: None, bool, int, float,
// decimal.Decimal, str, bytes / bytearray / memoryview, datetime, date, time, timedelta;
// a list, tuple or set becomes a parenthesised list (for IN (%s)). false with a Python
// exception set on failure.
bool append_py_literal(std::string& out, PyObject* obj, const escaping& e);
// Sets the PEP 249 exception for text that cannot be escaped (module.cpp: the character
// set in force unknown, errc::charset_unknown): a ProgrammingError.
void set_escape_error(std::error_code ec);

// `%s` / `%(name)s` / `%%` formatting of `sql` with `args` (a sequence or a mapping),
// every value escaped by append_py_literal. args None: sql as it is.
bool format_pyformat(std::string& out, std::string_view sql, PyObject* args, const escaping& e);

// Rewrites `%s` placeholders as `?` (and `%%` as `%`) for the binary protocol; false
// (exception set) for `%(name)s`, which needs a mapping.
bool qmark_from_pyformat(std::string& out, std::string_view sql);

// Bound arguments for the binary protocol, viewing into Python objects kept alive here.
class bound_args {
public:
    bound_args() = default;
    bound_args(const bound_args&) = delete;
    bound_args& operator=(const bound_args&) = delete;
    ~bound_args();
    // Text goes out in `codec`'s encoding (the connection's character set).
    explicit bound_args(const text_codec* codec = nullptr) : codec_(codec) {}
    // Appends one value; false with an exception set for an unsupported type.
    bool add(PyObject* obj);
    std::span<const sql_arg> args() const noexcept { return args_; }
    std::size_t size() const noexcept { return args_.size(); }

private:
    std::vector<sql_arg> args_;
    std::vector<PyObject*> keep_;       // strong references behind text / bytes views
    std::deque<std::string> scratch_;   // text made here (Decimal); a deque: views stay valid
    const text_codec* codec_ = nullptr;
};

}  // namespace ambisql::pyconv
