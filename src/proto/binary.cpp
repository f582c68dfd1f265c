#include "proto/binary.hpp"

#include <algorithm>
#include <cstring>

#include "proto/packets.hpp"

namespace ambisql::proto {

bool parse_prepare_ok(byte_span payload, prepare_ok& out) noexcept {
    reader r(payload);
    if (r.u8() != 0x00) return false;
    out.statement_id = r.u32();
    out.columns = r.u16();
    out.params = r.u16();
    r.u8();  // reserved
    out.warnings = r.remaining() >= 2 ? r.u16() : 0;
    return r.ok();
}

namespace {
// enum_field_types codes used for parameters.
constexpr std::uint8_t t_double = 5, t_null = 6, t_longlong = 8, t_date = 10, t_time = 11, t_datetime = 12,
                       t_blob = 252, t_string = 254;
constexpr std::uint8_t unsigned_flag = 0x80;

void write_datetime(writer& w, const datetime& d) {
    const bool micro = d.microsecond != 0;
    const bool clock = micro || d.hour || d.minute || d.second;
    w.u8(micro ? 11 : clock ? 7 : 4);
    w.u16(d.year);
    w.u8(d.month);
    w.u8(d.day);
    if (!clock) return;
    w.u8(d.hour);
    w.u8(d.minute);
    w.u8(d.second);
    if (micro) w.u32(d.microsecond);
}

void write_time(writer& w, const sql_time& t) {
    const bool micro = t.microsecond != 0;
    w.u8(micro ? 12 : 8);
    w.u8(t.negative ? 1 : 0);
    w.u32(t.hours / 24);
    w.u8(static_cast<std::uint8_t>(t.hours % 24));
    w.u8(t.minute);
    w.u8(t.second);
    if (micro) w.u32(t.microsecond);
}
}  // namespace

namespace {
void param_type(const sql_arg& a, std::uint8_t& type, std::uint8_t& flag) {
    flag = 0;
    switch (a.type()) {
        case sql_arg::kind::null:
        case sql_arg::kind::identifier: type = t_null; break;
        case sql_arg::kind::int64: type = t_longlong; break;
        case sql_arg::kind::uint64: type = t_longlong; flag = unsigned_flag; break;
        case sql_arg::kind::float64: type = t_double; break;
        case sql_arg::kind::text: type = t_string; break;
        case sql_arg::kind::bytes: type = t_blob; break;
        case sql_arg::kind::date: type = t_date; break;
        case sql_arg::kind::datetime: type = t_datetime; break;
        case sql_arg::kind::time: type = t_time; break;
    }
}

void write_value(writer& w, const sql_arg& a) {
    switch (a.type()) {
        case sql_arg::kind::null:
        case sql_arg::kind::identifier: break;
        case sql_arg::kind::int64: w.u64(static_cast<std::uint64_t>(a.int_value())); break;
        case sql_arg::kind::uint64: w.u64(a.uint_value()); break;
        case sql_arg::kind::float64: {
            double d = a.double_value();
            std::uint64_t bits;
            std::memcpy(&bits, &d, 8);
            w.u64(bits);
            break;
        }
        case sql_arg::kind::text:
        case sql_arg::kind::bytes: w.lenenc_string(a.text()); break;
        case sql_arg::kind::date: {
            const date& d = a.date_value();
            write_datetime(w, datetime{d.year, d.month, d.day, 0, 0, 0, 0});
            break;
        }
        case sql_arg::kind::datetime: write_datetime(w, a.datetime_value()); break;
        case sql_arg::kind::time: write_time(w, a.time_value()); break;
    }
}
}  // namespace

std::error_code write_bulk_execute(std::vector<std::uint8_t>& out, std::uint32_t statement_id,
                                   std::span<const sql_arg> values, std::size_t width, std::size_t first,
                                   std::size_t max_bytes, std::size_t& next) {
    const std::size_t rows = width ? values.size() / width : 0;
    const std::size_t start = out.size();
    writer w(out);
    w.u8(0xFA);  // COM_STMT_BULK_EXECUTE
    w.u32(statement_id);
    w.u16(128);  // SEND_TYPES_TO_SERVER
    const std::size_t types_at = out.size();
    out.resize(types_at + 2 * width);  // the batch's types, known once its rows are
    std::vector<sql_arg::kind> kinds(width, sql_arg::kind::null);
    next = first;
    for (std::size_t r = first; r < rows; ++r) {
        if (r > first && out.size() - start >= max_bytes) break;
        const sql_arg* row = values.data() + r * width;
        bool fits = true;
        for (std::size_t c = 0; c < width; ++c) {
            const sql_arg::kind k = row[c].type();
            if (k == sql_arg::kind::identifier) {
                out.resize(start);
                return errc::bad_value;
            }
            if (k != sql_arg::kind::null && kinds[c] != sql_arg::kind::null && kinds[c] != k) fits = false;
        }
        if (!fits) break;  // the next batch starts here, with this row's types
        for (std::size_t c = 0; c < width; ++c) {
            const sql_arg& a = row[c];
            if (a.type() == sql_arg::kind::null) {
                w.u8(1);  // NULL indicator
                continue;
            }
            kinds[c] = a.type();
            w.u8(0);
            write_value(w, a);
        }
        next = r + 1;
    }
    for (std::size_t c = 0; c < width; ++c) {
        std::uint8_t type = t_string, flag = 0;  // a column NULL throughout the batch: any type
        for (std::size_t r = first; r < next && kinds[c] != sql_arg::kind::null; ++r) {
            const sql_arg& a = values[r * width + c];
            if (a.type() != sql_arg::kind::null) {
                param_type(a, type, flag);
                break;
            }
        }
        out[types_at + 2 * c] = type;
        out[types_at + 2 * c + 1] = flag;
    }
    return {};
}

void write_long_data(std::vector<std::uint8_t>& out, std::uint32_t statement_id, std::uint16_t param,
                     std::string_view data) {
    writer w(out);
    w.u8(command::stmt_send_long_data);
    w.u32(statement_id);
    w.u16(param);
    w.bytes(data);
}

std::error_code write_execute(std::vector<std::uint8_t>& out, std::uint32_t statement_id,
                              std::span<const sql_arg> args, bool long_data, std::vector<std::uint8_t>* bound_types) {
    writer w(out);
    w.u8(command::stmt_execute);
    w.u32(statement_id);
    w.u8(0);   // no cursor
    w.u32(1);  // iteration count
    if (args.empty()) return {};
    const std::size_t bitmap = out.size();
    w.zeros((args.size() + 7) / 8);
    const std::size_t flag_at = out.size();
    w.u8(1);  // types follow
    const std::size_t types_at = out.size();
    for (std::size_t i = 0; i < args.size(); ++i) {
        const sql_arg& a = args[i];
        if (a.type() == sql_arg::kind::identifier) return errc::bad_value;  // names cannot be bound
        if (a.type() == sql_arg::kind::null) out[bitmap + i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
        std::uint8_t type = t_null, flag = 0;
        param_type(a, type, flag);
        w.u8(type);
        w.u8(flag);
    }
    if (bound_types) {
        const std::span<const std::uint8_t> types(out.data() + types_at, out.size() - types_at);
        if (std::equal(types.begin(), types.end(), bound_types->begin(), bound_types->end())) {
            out.resize(types_at);  // the server has these types from an earlier execute
            out[flag_at] = 0;
        } else {
            bound_types->assign(types.begin(), types.end());
        }
    }
    for (const sql_arg& a : args)
        if (!(long_data && is_long_data(a))) write_value(w, a);
    return {};
}

namespace {
// The size of a fixed-size binary value of column type t; 0 for the length-prefixed kinds.
std::size_t fixed_size(column_type t) noexcept {
    switch (t) {
        case column_type::tiny: return 1;
        case column_type::short_:
        case column_type::year: return 2;
        case column_type::long_:
        case column_type::int24:
        case column_type::float_: return 4;
        case column_type::longlong:
        case column_type::double_: return 8;
        default: return 0;
    }
}
bool is_temporal(column_type t) noexcept {
    return t == column_type::date || t == column_type::datetime || t == column_type::timestamp ||
           t == column_type::time || t == column_type::newdate;
}
}  // namespace

bool parse_binary_row(byte_span payload, std::span<const column> columns, const std::uint8_t* base,
                      std::vector<detail::field_ref>& out) {
    const std::size_t n = columns.size();
    const std::size_t bitmap_len = (n + 7 + 2) / 8;
    if (payload.size() < 1 + bitmap_len || payload[0] != 0x00) return false;
    const std::uint8_t* bitmap = payload.data() + 1;
    const std::uint8_t* p = bitmap + bitmap_len;
    const std::uint8_t* end = payload.data() + payload.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t bit = i + 2;
        if (bitmap[bit / 8] & (1u << (bit % 8))) {
            out.push_back({0, detail::null_field});
            continue;
        }
        const column_type t = columns[i].type;
        std::size_t len;
        if (std::size_t f = fixed_size(t)) {
            len = f;
        } else if (is_temporal(t)) {
            if (p >= end) return false;
            len = *p++;
        } else {
            if (p >= end) return false;
            std::uint8_t b = *p++;
            if (b < 0xFB) {
                len = b;
            } else {
                std::size_t w = b == 0xFC ? 2 : b == 0xFD ? 3 : b == 0xFE ? 8 : 0;
                if (w == 0 || std::size_t(end - p) < w) return false;
                std::uint64_t v = 0;
                for (std::size_t k = 0; k < w; ++k) v |= std::uint64_t(p[k]) << (8 * k);
                if (v >= detail::null_field) return false;
                len = static_cast<std::size_t>(v);
                p += w;
            }
        }
        if (len > std::size_t(end - p)) return false;
        out.push_back({static_cast<std::uint32_t>(p - base), static_cast<std::uint32_t>(len)});
        p += len;
    }
    return p == end;
}

}  // namespace ambisql::proto

namespace ambisql {

namespace {
std::uint64_t le(const std::uint8_t* p, std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(p[i]) << (8 * i);
    return v;
}
std::int64_t sign_extend(std::uint64_t v, std::size_t bytes) noexcept {
    const unsigned shift = 64 - 8 * static_cast<unsigned>(bytes);
    return static_cast<std::int64_t>(v << shift) >> shift;
}
}  // namespace

bool decode_binary_field(const column& c, std::string_view s, value& out) noexcept {
    const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
    const std::size_t n = s.size();
    switch (c.type) {
        case column_type::tiny:
        case column_type::short_:
        case column_type::long_:
        case column_type::int24:
        case column_type::longlong:
        case column_type::year: {  // YEAR: 2 bytes, signedness by flag as in text results
            // INT24 travels in 4 bytes; its sign is that of the 4-byte value.
            if (n != 1 && n != 2 && n != 4 && n != 8) return false;
            std::uint64_t v = le(p, n);
            out = c.is_unsigned() ? value::from_uint(v) : value::from_int(sign_extend(v, n));
            return true;
        }
        case column_type::float_: {
            if (n != 4) return false;
            float f;
            std::memcpy(&f, p, 4);
            out = value::from_float(f);
            return true;
        }
        case column_type::double_: {
            if (n != 8) return false;
            double d;
            std::memcpy(&d, p, 8);
            out = value::from_double(d);
            return true;
        }
        case column_type::date:
        case column_type::newdate:
        case column_type::datetime:
        case column_type::timestamp: {
            if (n != 0 && n != 4 && n != 7 && n != 11) return false;
            datetime d;
            if (n >= 4) {
                d.year = static_cast<std::uint16_t>(le(p, 2));
                d.month = p[2];
                d.day = p[3];
            }
            if (n >= 7) {
                d.hour = p[4];
                d.minute = p[5];
                d.second = p[6];
            }
            if (n == 11) d.microsecond = static_cast<std::uint32_t>(le(p + 7, 4));
            if (c.type == column_type::date || c.type == column_type::newdate)
                out = value::from_date(date{d.year, d.month, d.day});
            else
                out = value::from_datetime(d);
            return true;
        }
        case column_type::time: {
            if (n != 0 && n != 8 && n != 12) return false;
            sql_time t;
            if (n >= 8) {
                t.negative = p[0] != 0;
                const std::uint64_t hours = le(p + 1, 4) * 24 + p[5];
                // Every part within its unit, and no more hours than the text form's 7
                // digits: what a hostile server sends beyond that is refused.
                if (p[5] > 23 || p[6] > 59 || p[7] > 59 || hours > 9999999) return false;
                t.hours = static_cast<std::uint32_t>(hours);
                t.minute = p[6];
                t.second = p[7];
            }
            if (n == 12) {
                t.microsecond = static_cast<std::uint32_t>(le(p + 8, 4));
                if (t.microsecond > 999999) return false;
            }
            out = value::from_time(t);
            return true;
        }
        case column_type::bit: {
            if (n > 8) return false;
            std::uint64_t v = 0;
            for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
            out = value::from_uint(v);
            return true;
        }
        case column_type::decimal:
        case column_type::newdecimal: out = value::from_text(value_kind::decimal, s); return true;
        case column_type::null: out = value(); return true;
        default:
            out = value::from_text(c.is_binary() ? value_kind::blob : value_kind::string, s);
            return true;
    }
}

}  // namespace ambisql
