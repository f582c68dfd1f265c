#pragma once
// Client-side parameter interpolation: "? " placeholders replaced by escaped literals.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <system_error>
#include <type_traits>

#include "ambisql/value.hpp"

namespace ambisql {

// A name to be quoted as an identifier (`name`, backticks doubled).
struct identifier {
    std::string_view name;
};

// Bytes to be sent as a hexadecimal literal (X'...'), whatever the character set.
struct bytes {
    std::span<const std::byte> data;
    bytes() = default;
    explicit bytes(std::span<const std::byte> d) : data(d) {}
    explicit bytes(std::string_view s) : data(reinterpret_cast<const std::byte*>(s.data()), s.size()) {}
};

// One interpolation argument, whatever its C++ type.
class sql_arg {
    template <class T>
    static constexpr bool is_character = std::is_same_v<T, char> || std::is_same_v<T, wchar_t> ||
                                         std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
                                         std::is_same_v<T, char32_t>;

public:
    enum class kind : std::uint8_t { null, int64, uint64, float64, text, bytes, date, datetime, time, identifier };

    sql_arg(std::nullptr_t) noexcept : kind_(kind::null) {}
    sql_arg(std::nullopt_t) noexcept : kind_(kind::null) {}
    sql_arg(bool v) noexcept : kind_(kind::int64) { i_ = v ? 1 : 0; }
    template <class T>
        requires(std::is_integral_v<T> && std::is_signed_v<T> && !std::is_same_v<T, bool> && !is_character<T>)
    sql_arg(T v) noexcept : kind_(kind::int64) { i_ = v; }
    template <class T>
        requires(std::is_integral_v<T> && std::is_unsigned_v<T> && !std::is_same_v<T, bool> && !is_character<T>)
    sql_arg(T v) noexcept : kind_(kind::uint64) { u_ = v; }
    // A plain `char` is a number on some platforms (signed or unsigned) and a character
    // to its reader: bind std::string_view(&c, 1) for text, or signed char / unsigned
    // char / int for a number. (signed char and unsigned char bind as numbers.)
    template <class T>
        requires is_character<T>
    sql_arg(T) = delete;
    sql_arg(double v) noexcept : kind_(kind::float64) { d_ = v; }
    sql_arg(float v) noexcept : kind_(kind::float64) { d_ = v; }
    sql_arg(std::string_view v) noexcept : kind_(kind::text), s_(v) {}
    sql_arg(const std::string& v) noexcept : kind_(kind::text), s_(v) {}
    sql_arg(const char* v) noexcept : kind_(v ? kind::text : kind::null), s_(v ? v : "") {}
    sql_arg(bytes v) noexcept : kind_(kind::bytes), s_(reinterpret_cast<const char*>(v.data.data()), v.data.size()) {}
    sql_arg(identifier v) noexcept : kind_(kind::identifier), s_(v.name) {}
    sql_arg(ambisql::date v) noexcept : kind_(kind::date) { date_ = v; }
    sql_arg(ambisql::datetime v) noexcept : kind_(kind::datetime) { dt_ = v; }
    sql_arg(ambisql::sql_time v) noexcept : kind_(kind::time) { time_ = v; }
    template <class T>
    sql_arg(const std::optional<T>& v) noexcept : sql_arg(nullptr) {
        if (v) *this = sql_arg(*v);
    }

    kind type() const noexcept { return kind_; }
    std::int64_t int_value() const noexcept { return i_; }
    std::uint64_t uint_value() const noexcept { return u_; }
    double double_value() const noexcept { return d_; }
    std::string_view text() const noexcept { return s_; }
    const ambisql::date& date_value() const noexcept { return date_; }
    const ambisql::datetime& datetime_value() const noexcept { return dt_; }
    const ambisql::sql_time& time_value() const noexcept { return time_; }

private:
    kind kind_;
    union {
        std::int64_t i_ = 0;
        std::uint64_t u_;
        double d_;
        ambisql::date date_;
        ambisql::datetime dt_;
        ambisql::sql_time time_;
    };
    std::string_view s_;
};

// Multibyte character sets in which a character's trailing byte can be 0x5C ('\\') or
// another byte that escaping gives meaning to: text in them is escaped character by
// character, never byte by byte (the 0xBF27 -> 0xBF5C27 injection).
enum class multibyte : std::uint8_t { none, big5, sjis, gbk, gb2312, gb18030 };
// The family of a character set's name (cp932 is sjis's); none for every other one.
multibyte multibyte_of(std::string_view charset_name) noexcept;

// How literals must be escaped on a given connection.
struct escaping {
    bool no_backslash_escapes = false;  // server status NO_BACKSLASH_ESCAPES
    bool charset_unknown = false;       // the character set in force is not known: refuse text literals
    multibyte mb = multibyte::none;     // the text's character set, when it is one of those
};

// Appends `s` as a quoted string literal, `s` being text in the character set `e` names.
// Fails with errc::charset_unknown when the connection's character set is not known, and
// errc::bad_text when `s` is not valid in a multibyte character set (a lead byte without
// its trailing byte): nothing is appended then.
std::error_code append_string_literal(std::string& out, std::string_view s, const escaping& e);
// Appends `name` as a quoted identifier.
void append_identifier(std::string& out, std::string_view name);
// Appends one argument as a literal.
std::error_code append_literal(std::string& out, const sql_arg& a, const escaping& e);

// Replaces each `?` outside quotes and comments with the next argument's literal.
// errc::placeholder_mismatch when the counts differ.
std::error_code format_sql(std::string& out, std::string_view sql, std::span<const sql_arg> args,
                           const escaping& e);



namespace detail {
// Arguments with their text and bytes copied, for operations that outlive the caller's
// values. The views point into `text`, whose elements never move (reserved up front; a
// moved vector keeps its buffer).
struct owned_args {
    std::vector<std::string> text;
    std::vector<sql_arg> args;
    owned_args() = default;
    owned_args(const owned_args&) = delete;  // the views would point into the original
    owned_args& operator=(const owned_args&) = delete;
    owned_args(owned_args&&) noexcept = default;
    owned_args& operator=(owned_args&&) noexcept = default;
    explicit owned_args(std::span<const sql_arg> in) {
        text.reserve(in.size());
        args.reserve(in.size());
        for (const sql_arg& a : in) {
            if (a.type() == sql_arg::kind::text || a.type() == sql_arg::kind::identifier) {
                const std::string& t = text.emplace_back(a.text());
                args.push_back(a.type() == sql_arg::kind::text ? sql_arg(std::string_view(t)) : sql_arg(identifier{t}));
            } else if (a.type() == sql_arg::kind::bytes) {
                const std::string& b = text.emplace_back(a.text());
                args.emplace_back(bytes{std::as_bytes(std::span(b.data(), b.size()))});
            } else {
                args.push_back(a);
            }
        }
    }
};
}  // namespace detail

}  // namespace ambisql
