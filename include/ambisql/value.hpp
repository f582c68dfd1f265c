#pragma once
// Typed values decoded from result rows, and the column metadata that types them.
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace ambisql {

// Column types as the protocol names them (enum_field_types).
enum class column_type : std::uint8_t {
    decimal = 0,
    tiny = 1,
    short_ = 2,
    long_ = 3,
    float_ = 4,
    double_ = 5,
    null = 6,
    timestamp = 7,
    longlong = 8,
    int24 = 9,
    date = 10,
    time = 11,
    datetime = 12,
    year = 13,
    newdate = 14,
    varchar = 15,
    bit = 16,
    json = 245,
    newdecimal = 246,
    enum_ = 247,
    set = 248,
    tiny_blob = 249,
    medium_blob = 250,
    long_blob = 251,
    blob = 252,
    var_string = 253,
    string = 254,
    geometry = 255,
};

// Column flags (a subset; the rest are kept in column::flags).
namespace column_flag {
inline constexpr std::uint16_t not_null = 1;
inline constexpr std::uint16_t primary_key = 2;
inline constexpr std::uint16_t unique_key = 4;
inline constexpr std::uint16_t blob = 16;
inline constexpr std::uint16_t unsigned_ = 32;
inline constexpr std::uint16_t zerofill = 64;
inline constexpr std::uint16_t binary = 128;
inline constexpr std::uint16_t enum_ = 256;
inline constexpr std::uint16_t auto_increment = 512;
inline constexpr std::uint16_t timestamp = 1024;
inline constexpr std::uint16_t set = 2048;
}  // namespace column_flag

inline constexpr std::uint16_t binary_charset = 63;

struct column {
    std::string_view schema;
    std::string_view table;      // alias
    std::string_view org_table;  // real table
    std::string_view name;       // alias
    std::string_view org_name;   // real column
    std::uint16_t charset = 0;   // collation id; 63 = binary
    std::uint32_t length = 0;
    column_type type = column_type::null;
    std::uint16_t flags = 0;
    std::uint8_t decimals = 0;

    bool is_unsigned() const noexcept { return (flags & column_flag::unsigned_) != 0; }
    bool is_binary() const noexcept { return charset == binary_charset; }
};

// DATE. Zero dates ('0000-00-00') and invalid dates are representable.
struct date {
    std::uint16_t year = 0;
    std::uint8_t month = 0;
    std::uint8_t day = 0;
    friend bool operator==(const date&, const date&) = default;
};

// DATETIME and TIMESTAMP.
struct datetime {
    std::uint16_t year = 0;
    std::uint8_t month = 0;
    std::uint8_t day = 0;
    std::uint8_t hour = 0;
    std::uint8_t minute = 0;
    std::uint8_t second = 0;
    std::uint32_t microsecond = 0;
    friend bool operator==(const datetime&, const datetime&) = default;
};

// TIME: a signed span that may exceed 24 hours (-838:59:59 .. 838:59:59).
struct sql_time {
    bool negative = false;
    std::uint32_t hours = 0;
    std::uint8_t minute = 0;
    std::uint8_t second = 0;
    std::uint32_t microsecond = 0;
    friend bool operator==(const sql_time&, const sql_time&) = default;
    // Saturates at +-INT64_MAX beyond 2.56 billion hours (a server's TIME is at most
    // 838:59:59; the decoders refuse more than 9,999,999 hours).
    std::int64_t total_microseconds() const noexcept {
        const std::uint64_t us = ((std::uint64_t(hours) * 60 + minute) * 60 + second) * 1000000 + microsecond;
        const std::int64_t m = us > std::uint64_t(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(us);
        return negative ? -m : m;
    }
};

std::string to_string(const date& d);
std::string to_string(const datetime& d);
std::string to_string(const sql_time& t);

[[noreturn]] void throw_out_of_range();

enum class value_kind : std::uint8_t {
    null,
    int64,     // signed integers, YEAR
    uint64,    // unsigned integers, BIT
    float32,   // FLOAT
    float64,   // DOUBLE
    decimal,   // DECIMAL: exact digits as text, never through a double
    string,    // CHAR/VARCHAR/TEXT/ENUM/SET/JSON in a text charset
    blob,      // BINARY/VARBINARY/BLOB/GEOMETRY (charset 63)
    date,
    datetime,  // DATETIME and TIMESTAMP
    time,
};

const char* to_string(value_kind k) noexcept;

// A decoded value. Text and bytes are views into the row they came from.
class value {
public:
    value() noexcept : kind_(value_kind::null), i_(0) {}
    static value from_int(std::int64_t v) noexcept { value x(value_kind::int64); x.i_ = v; return x; }
    static value from_uint(std::uint64_t v) noexcept { value x(value_kind::uint64); x.u_ = v; return x; }
    static value from_float(float v) noexcept { value x(value_kind::float32); x.f_ = v; return x; }
    static value from_double(double v) noexcept { value x(value_kind::float64); x.d_ = v; return x; }
    static value from_text(value_kind k, std::string_view s) noexcept { value x(k); x.s_ = s; x.i_ = 0; return x; }
    static value from_date(date v) noexcept { value x(value_kind::date); x.date_ = v; return x; }
    static value from_datetime(datetime v) noexcept { value x(value_kind::datetime); x.dt_ = v; return x; }
    static value from_time(ambisql::sql_time v) noexcept { value x(value_kind::time); x.time_ = v; return x; }

    value_kind kind() const noexcept { return kind_; }
    bool is_null() const noexcept { return kind_ == value_kind::null; }

    // Checked access: integers convert when the value fits, text kinds give their bytes;
    // anything else throws ambisql::error (errc::value_type_mismatch / value_out_of_range).
    // T is one of: std::int64_t (and narrower signed), std::uint64_t (and narrower
    // unsigned), bool, float, double, std::string_view, std::string, date, datetime, time.
    template <class T>
    T as() const;

    std::int64_t get_int() const {
        return kind_ == value_kind::int64 ? i_ : convert_int();
    }
    std::uint64_t get_uint() const {
        return kind_ == value_kind::uint64 ? u_ : convert_uint();
    }
    double get_double() const;
    float get_float() const;
    std::string_view get_text() const {  // string, blob or decimal
        if (kind_ == value_kind::string || kind_ == value_kind::blob || kind_ == value_kind::decimal) return s_;
        text_mismatch();
    }
    std::span<const std::byte> get_bytes() const;
    ambisql::date get_date() const;
    ambisql::datetime get_datetime() const;
    ambisql::sql_time get_time() const;

    // A human-readable rendering (NULL for null).
    std::string to_string() const;

    friend bool operator==(const value& a, const value& b) noexcept;

private:
    explicit value(value_kind k) noexcept : kind_(k), i_(0) {}
    std::int64_t convert_int() const;    // from uint64, or throws
    std::uint64_t convert_uint() const;  // from int64, or throws
    [[noreturn]] void text_mismatch() const;
    value_kind kind_;
    union {
        std::int64_t i_;
        std::uint64_t u_;
        float f_;
        double d_;
        ambisql::date date_;
        ambisql::datetime dt_;
        ambisql::sql_time time_;
    };
    std::string_view s_;
};

template <class T>
T value::as() const {
    if constexpr (std::is_same_v<T, bool>) {
        return get_int() != 0;
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        std::int64_t v = get_int();
        if (v < std::int64_t(std::numeric_limits<T>::min()) || v > std::int64_t(std::numeric_limits<T>::max()))
            throw_out_of_range();
        return static_cast<T>(v);
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
        std::uint64_t v = get_uint();
        if (v > std::uint64_t(std::numeric_limits<T>::max())) throw_out_of_range();
        return static_cast<T>(v);
    } else if constexpr (std::is_same_v<T, double>) {
        return get_double();
    } else if constexpr (std::is_same_v<T, float>) {
        return get_float();
    } else if constexpr (std::is_same_v<T, std::string_view>) {
        return get_text();
    } else if constexpr (std::is_same_v<T, std::string>) {
        return std::string(get_text());
    } else if constexpr (std::is_same_v<T, ambisql::date>) {
        return get_date();
    } else if constexpr (std::is_same_v<T, ambisql::datetime>) {
        return get_datetime();
    } else if constexpr (std::is_same_v<T, ambisql::sql_time>) {
        return get_time();
    } else {
        static_assert(sizeof(T) == 0, "value::as<T>: unsupported type");
    }
}

}  // namespace ambisql
