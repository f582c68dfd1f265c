// Decoding text-protocol fields into typed values, and the value accessors.
#include <charconv>
#include <cstdio>
#include <cstring>

#include "ambisql/error.hpp"
#include "ambisql/row.hpp"
#include "ambisql/value.hpp"

namespace ambisql {

namespace {

[[noreturn]] void throw_client(errc code, std::string msg) {
    diagnostics d;
    d.kind = error_kind::client;
    d.code = code;
    d.message = std::move(msg);
    throw error(std::move(d));
}

// Parses exactly `n` digits.
bool digits(const char*& p, const char* end, int n, std::uint32_t& out) {
    if (end - p < n) return false;
    std::uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
        unsigned d = static_cast<unsigned char>(p[i]) - '0';
        if (d > 9) return false;
        v = v * 10 + d;
    }
    p += n;
    out = v;
    return true;
}

bool expect(const char*& p, const char* end, char c) {
    if (p == end || *p != c) return false;
    ++p;
    return true;
}

// ".ffffff" with 1..6 digits, scaled to microseconds; absent is fine.
bool fraction(const char*& p, const char* end, std::uint32_t& us) {
    us = 0;
    if (p == end) return true;
    if (*p != '.') return false;
    ++p;
    int n = 0;
    while (p != end && n < 6) {
        unsigned d = static_cast<unsigned char>(*p) - '0';
        if (d > 9) return false;
        us = us * 10 + d;
        ++p;
        ++n;
    }
    if (n == 0 || p != end) return false;
    for (; n < 6; ++n) us *= 10;
    return true;
}

bool parse_date(const char*& p, const char* end, date& d) {
    std::uint32_t y, m, dd;
    if (!digits(p, end, 4, y) || !expect(p, end, '-') || !digits(p, end, 2, m) || !expect(p, end, '-') ||
        !digits(p, end, 2, dd))
        return false;
    if (m > 12 || dd > 31) return false;
    d = {static_cast<std::uint16_t>(y), static_cast<std::uint8_t>(m), static_cast<std::uint8_t>(dd)};
    return true;
}

bool parse_datetime(std::string_view s, datetime& out) {
    const char* p = s.data();
    const char* end = p + s.size();
    date d;
    if (!parse_date(p, end, d)) return false;
    out = {d.year, d.month, d.day, 0, 0, 0, 0};
    if (p == end) return true;
    std::uint32_t h, mi, se, us;
    if (!expect(p, end, ' ') || !digits(p, end, 2, h) || !expect(p, end, ':') || !digits(p, end, 2, mi) ||
        !expect(p, end, ':') || !digits(p, end, 2, se) || !fraction(p, end, us))
        return false;
    if (h > 23 || mi > 59 || se > 59) return false;
    out.hour = static_cast<std::uint8_t>(h);
    out.minute = static_cast<std::uint8_t>(mi);
    out.second = static_cast<std::uint8_t>(se);
    out.microsecond = us;
    return true;
}

bool parse_time(std::string_view s, sql_time& out) {
    const char* p = s.data();
    const char* end = p + s.size();
    out = {};
    if (p != end && *p == '-') {
        out.negative = true;
        ++p;
    }
    std::uint32_t h = 0;
    int n = 0;
    while (p != end && *p != ':') {
        unsigned d = static_cast<unsigned char>(*p) - '0';
        if (d > 9 || n >= 7) return false;
        h = h * 10 + d;
        ++p;
        ++n;
    }
    std::uint32_t mi, se, us;
    if (n == 0 || !expect(p, end, ':') || !digits(p, end, 2, mi) || !expect(p, end, ':') ||
        !digits(p, end, 2, se) || !fraction(p, end, us))
        return false;
    if (mi > 59 || se > 59) return false;
    out.hours = h;
    out.minute = static_cast<std::uint8_t>(mi);
    out.second = static_cast<std::uint8_t>(se);
    out.microsecond = us;
    return true;
}

bool is_decimal_text(std::string_view s) {
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    bool any = false, dot = false;
    for (; i < s.size(); ++i) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            any = true;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            return false;
        }
    }
    return any;
}

}  // namespace

void throw_out_of_range() { throw_client(errc::value_out_of_range, "value out of range for the requested type"); }

bool decode_text_field(const column& c, std::string_view s, value& out) noexcept {
    const char* b = s.data();
    const char* e = b + s.size();
    switch (c.type) {
        case column_type::tiny:
        case column_type::short_:
        case column_type::long_:
        case column_type::int24:
        case column_type::longlong:
        case column_type::year: {
            if (c.is_unsigned()) {
                std::uint64_t v;
                auto r = std::from_chars(b, e, v);
                if (r.ec != std::errc() || r.ptr != e) return false;
                out = value::from_uint(v);
            } else {
                std::int64_t v;
                auto r = std::from_chars(b, e, v);
                if (r.ec != std::errc() || r.ptr != e) return false;
                out = value::from_int(v);
            }
            return true;
        }
        case column_type::float_: {
            float v;
            auto r = std::from_chars(b, e, v);
            if (r.ec != std::errc() || r.ptr != e) return false;
            out = value::from_float(v);
            return true;
        }
        case column_type::double_: {
            double v;
            auto r = std::from_chars(b, e, v);
            if (r.ec != std::errc() || r.ptr != e) return false;
            out = value::from_double(v);
            return true;
        }
        case column_type::decimal:
        case column_type::newdecimal:
            if (!is_decimal_text(s)) return false;
            out = value::from_text(value_kind::decimal, s);
            return true;
        case column_type::date:
        case column_type::newdate: {
            date d;
            const char* p = b;
            if (!parse_date(p, e, d) || p != e) return false;
            out = value::from_date(d);
            return true;
        }
        case column_type::datetime:
        case column_type::timestamp: {
            datetime d;
            if (!parse_datetime(s, d)) return false;
            out = value::from_datetime(d);
            return true;
        }
        case column_type::time: {
            sql_time t;
            if (!parse_time(s, t)) return false;
            out = value::from_time(t);
            return true;
        }
        case column_type::bit: {
            if (s.size() > 8) return false;
            std::uint64_t v = 0;
            for (char ch : s) v = (v << 8) | static_cast<unsigned char>(ch);
            out = value::from_uint(v);
            return true;
        }
        case column_type::null: out = value(); return true;
        case column_type::geometry: out = value::from_text(value_kind::blob, s); return true;
        default:
            out = value::from_text(c.is_binary() ? value_kind::blob : value_kind::string, s);
            return true;
    }
}

value row_view::decode_at(std::size_t i) const {
    value v;
    const column& c = columns_[i];
    if (!(binary_ ? decode_binary_field(c, raw(i), v) : decode_text_field(c, raw(i), v))) {
        diagnostics d;
        d.kind = error_kind::protocol;
        d.code = errc::protocol_error;
        d.message = "cannot decode column '";
        d.message.append(c.name).append("' (type ").append(std::to_string(static_cast<int>(c.type))).append(") from ");
        if (binary_)
            d.message.append(std::to_string(raw(i).size())).append(" bytes of a binary row");
        else
            d.message.append("'").append(raw(i).substr(0, 64)).append("'");
        throw error(std::move(d));
    }
    return v;
}

value row_view::at(std::size_t i) const {
    if (i >= size_) throw_client(errc::value_out_of_range, "column index out of range");
    return (*this)[i];
}

value row_view::at(std::string_view name) const {
    for (std::size_t i = 0; i < size_; ++i)
        if (columns_[i].name == name) return (*this)[i];
    throw_client(errc::value_out_of_range, "no column named '" + std::string(name) + "'");
}

// ---------------------------------------------------------------- value

const char* to_string(value_kind k) noexcept {
    switch (k) {
        case value_kind::null: return "null";
        case value_kind::int64: return "int64";
        case value_kind::uint64: return "uint64";
        case value_kind::float32: return "float";
        case value_kind::float64: return "double";
        case value_kind::decimal: return "decimal";
        case value_kind::string: return "string";
        case value_kind::blob: return "blob";
        case value_kind::date: return "date";
        case value_kind::datetime: return "datetime";
        case value_kind::time: return "time";
    }
    return "?";
}

namespace {
[[noreturn]] void mismatch(value_kind have, const char* want) {
    throw_client(errc::value_type_mismatch, std::string("value is ") + to_string(have) + ", not " + want);
}
}  // namespace

std::int64_t value::convert_int() const {
    if (kind_ == value_kind::uint64) {
        if (u_ > std::uint64_t(std::numeric_limits<std::int64_t>::max())) throw_out_of_range();
        return static_cast<std::int64_t>(u_);
    }
    mismatch(kind_, "an integer");
}

std::uint64_t value::convert_uint() const {
    if (kind_ == value_kind::int64) {
        if (i_ < 0) throw_out_of_range();
        return static_cast<std::uint64_t>(i_);
    }
    mismatch(kind_, "an unsigned integer");
}

double value::get_double() const {
    switch (kind_) {
        case value_kind::float64: return d_;
        case value_kind::float32: return f_;
        case value_kind::int64: return static_cast<double>(i_);
        case value_kind::uint64: return static_cast<double>(u_);
        default: mismatch(kind_, "a floating-point number");
    }
}

float value::get_float() const {
    if (kind_ == value_kind::float32) return f_;
    mismatch(kind_, "a float");
}

void value::text_mismatch() const { mismatch(kind_, "text"); }

std::span<const std::byte> value::get_bytes() const {
    auto t = get_text();
    return {reinterpret_cast<const std::byte*>(t.data()), t.size()};
}

date value::get_date() const {
    if (kind_ == value_kind::date) return date_;
    mismatch(kind_, "a date");
}

datetime value::get_datetime() const {
    if (kind_ == value_kind::datetime) return dt_;
    if (kind_ == value_kind::date) return {date_.year, date_.month, date_.day, 0, 0, 0, 0};
    mismatch(kind_, "a datetime");
}

sql_time value::get_time() const {
    if (kind_ == value_kind::time) return time_;
    mismatch(kind_, "a time");
}

bool operator==(const value& a, const value& b) noexcept {
    if (a.kind_ != b.kind_) return false;
    switch (a.kind_) {
        case value_kind::null: return true;
        case value_kind::int64: return a.i_ == b.i_;
        case value_kind::uint64: return a.u_ == b.u_;
        case value_kind::float32: return a.f_ == b.f_;
        case value_kind::float64: return a.d_ == b.d_;
        case value_kind::date: return a.date_ == b.date_;
        case value_kind::datetime: return a.dt_ == b.dt_;
        case value_kind::time: return a.time_ == b.time_;
        default: return a.s_ == b.s_;
    }
}

std::string to_string(const date& d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04u-%02u-%02u", d.year, d.month, d.day);
    return buf;
}

std::string to_string(const datetime& d) {
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "%04u-%02u-%02u %02u:%02u:%02u", d.year, d.month, d.day, d.hour,
                          d.minute, d.second);
    if (d.microsecond) std::snprintf(buf + n, sizeof buf - n, ".%06u", d.microsecond);
    return buf;
}

std::string to_string(const sql_time& t) {
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "%s%02u:%02u:%02u", t.negative ? "-" : "", t.hours, t.minute, t.second);
    if (t.microsecond) std::snprintf(buf + n, sizeof buf - n, ".%06u", t.microsecond);
    return buf;
}

std::string value::to_string() const {
    switch (kind_) {
        case value_kind::null: return "NULL";
        case value_kind::int64: return std::to_string(i_);
        case value_kind::uint64: return std::to_string(u_);
        case value_kind::float32:
        case value_kind::float64: {
            char buf[64];
            auto r = kind_ == value_kind::float32 ? std::to_chars(buf, buf + sizeof buf, f_)
                                                  : std::to_chars(buf, buf + sizeof buf, d_);
            return std::string(buf, r.ptr);
        }
        case value_kind::date: return ambisql::to_string(date_);
        case value_kind::datetime: return ambisql::to_string(dt_);
        case value_kind::time: return ambisql::to_string(time_);
        default: return std::string(s_);
    }
}

}  // namespace ambisql
