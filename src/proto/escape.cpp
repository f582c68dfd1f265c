// Client-side interpolation: escaping literals for the connection's rules.
#include <charconv>
#include <cmath>
#include <cstdio>

#include "ambisql/error.hpp"
#include "ambisql/format.hpp"

namespace ambisql {

multibyte multibyte_of(std::string_view cs) noexcept {
    if (cs == "big5") return multibyte::big5;
    if (cs == "sjis" || cs == "cp932") return multibyte::sjis;
    if (cs == "gbk") return multibyte::gbk;
    if (cs == "gb2312") return multibyte::gb2312;
    if (cs == "gb18030") return multibyte::gb18030;
    return multibyte::none;
}

namespace {
bool in(unsigned char c, unsigned lo, unsigned hi) { return c >= lo && c <= hi; }

// The length of the character that starts at s[i] when s[i] >= 0x80 (the server's own
// lead and trailing byte ranges for each set); 0 when no valid character starts there.
// A byte the server would pair with the next is never taken alone, so no escape we add
// can become that character's trailing byte.
std::size_t mb_length(multibyte mb, std::string_view s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t left = s.size() - i;
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    switch (mb) {
        case multibyte::big5:
            return in(c, 0xA1, 0xF9) && left >= 2 && (in(at(1), 0x40, 0x7E) || in(at(1), 0xA1, 0xFE)) ? 2 : 0;
        case multibyte::sjis:
            if (in(c, 0xA1, 0xDF)) return 1;  // half-width katakana: one byte
            return (in(c, 0x81, 0x9F) || in(c, 0xE0, 0xFC)) && left >= 2 &&
                           (in(at(1), 0x40, 0x7E) || in(at(1), 0x80, 0xFC))
                       ? 2
                       : 0;
        case multibyte::gbk:
            return in(c, 0x81, 0xFE) && left >= 2 && (in(at(1), 0x40, 0x7E) || in(at(1), 0x80, 0xFE)) ? 2 : 0;
        case multibyte::gb2312: return in(c, 0xA1, 0xF7) && left >= 2 && in(at(1), 0xA1, 0xFE) ? 2 : 0;
        case multibyte::gb18030:
            if (!in(c, 0x81, 0xFE) || left < 2) return 0;
            if (in(at(1), 0x40, 0x7E) || in(at(1), 0x80, 0xFE)) return 2;
            return left >= 4 && in(at(1), 0x30, 0x39) && in(at(2), 0x81, 0xFE) && in(at(3), 0x30, 0x39) ? 4 : 0;
        case multibyte::none: return 1;
    }
    return 0;
}

void append_escaped(std::string& out, char c, bool no_backslash_escapes) {
    if (no_backslash_escapes) {  // only the quote is special; a backslash is an ordinary character
        if (c == '\'') out.push_back('\'');
        out.push_back(c);
        return;
    }
    switch (c) {
        case '\0': out += "\\0"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\\': out += "\\\\"; break;
        case '\'': out += "\\'"; break;
        case '"': out += "\\\""; break;
        case '\x1a': out += "\\Z"; break;
        default: out.push_back(c);
    }
}
}  // namespace

std::error_code append_string_literal(std::string& out, std::string_view s, const escaping& e) {
    if (e.charset_unknown) return errc::charset_unknown;
    const std::size_t start = out.size();
    out.reserve(out.size() + s.size() + 2);
    out.push_back('\'');
    for (std::size_t i = 0; i < s.size();) {
        if (e.mb != multibyte::none && static_cast<unsigned char>(s[i]) >= 0x80) {
            const std::size_t n = mb_length(e.mb, s, i);
            if (n == 0) {
                out.resize(start);
                return errc::bad_text;
            }
            out.append(s.substr(i, n));  // a whole character: its bytes are its own
            i += n;
            continue;
        }
        append_escaped(out, s[i++], e.no_backslash_escapes);
    }
    out.push_back('\'');
    return {};
}

void append_identifier(std::string& out, std::string_view name) {
    out.push_back('`');
    for (char c : name) {
        if (c == '`') out.push_back('`');
        out.push_back(c);
    }
    out.push_back('`');
}

std::error_code append_literal(std::string& out, const sql_arg& a, const escaping& e) {
    char buf[64];
    switch (a.type()) {
        case sql_arg::kind::null: out += "NULL"; return {};
        case sql_arg::kind::int64: {
            auto r = std::to_chars(buf, buf + sizeof buf, a.int_value());
            out.append(buf, r.ptr);
            return {};
        }
        case sql_arg::kind::uint64: {
            auto r = std::to_chars(buf, buf + sizeof buf, a.uint_value());
            out.append(buf, r.ptr);
            return {};
        }
        case sql_arg::kind::float64: {
            double d = a.double_value();
            if (!std::isfinite(d)) return errc::bad_value;  // SQL has no NaN or infinity
            auto r = std::to_chars(buf, buf + sizeof buf, d);
            std::string_view lit(buf, static_cast<std::size_t>(r.ptr - buf));
            out += lit;
            // Shortest round-trip digits; an exponent makes it a DOUBLE literal, not DECIMAL.
            if (lit.find('e') == std::string_view::npos) out += "e0";
            return {};
        }
        case sql_arg::kind::text: return append_string_literal(out, a.text(), e);
        case sql_arg::kind::bytes: {
            static constexpr char hex[] = "0123456789ABCDEF";
            std::string_view b = a.text();
            out.reserve(out.size() + 2 * b.size() + 3);
            out += "X'";
            for (unsigned char c : b) {
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 15]);
            }
            out.push_back('\'');
            return {};
        }
        case sql_arg::kind::identifier: append_identifier(out, a.text()); return {};
        case sql_arg::kind::date:
            out += '\'';
            out += to_string(a.date_value());
            out += '\'';
            return {};
        case sql_arg::kind::datetime:
            out += '\'';
            out += to_string(a.datetime_value());
            out += '\'';
            return {};
        case sql_arg::kind::time:
            out += '\'';
            out += to_string(a.time_value());
            out += '\'';
            return {};
    }
    return errc::bad_value;
}

std::error_code format_sql(std::string& out, std::string_view sql, std::span<const sql_arg> args,
                           const escaping& e) {
    std::size_t next = 0;
    std::size_t i = 0;
    const std::size_t n = sql.size();
    auto copy_until = [&](std::size_t end) {
        out.append(sql.substr(i, end - i));
        i = end;
    };
    while (i < n) {
        std::size_t j = i;
        // Find the next character that matters.
        while (j < n && sql[j] != '?' && sql[j] != '\'' && sql[j] != '"' && sql[j] != '`' && sql[j] != '-' &&
               sql[j] != '#' && sql[j] != '/')
            ++j;
        copy_until(j);
        if (j >= n) break;
        char c = sql[j];
        if (c == '?') {
            if (next >= args.size()) return errc::placeholder_mismatch;
            if (auto ec = append_literal(out, args[next++], e)) return ec;
            ++i;
        } else if (c == '\'' || c == '"' || c == '`') {
            // A quoted literal or identifier: copy through its end, honouring escapes.
            std::size_t k = j + 1;
            while (k < n) {
                if (sql[k] == '\\' && c != '`' && !e.no_backslash_escapes) {
                    k += 2;
                    continue;
                }
                if (sql[k] == c) {
                    if (k + 1 < n && sql[k + 1] == c) {  // doubled quote
                        k += 2;
                        continue;
                    }
                    break;
                }
                ++k;
            }
            copy_until(k < n ? k + 1 : n);
        } else if (c == '#' || (c == '-' && j + 2 < n && sql[j + 1] == '-' && (sql[j + 2] == ' ' || sql[j + 2] == '\t')) ||
                   (c == '-' && j + 2 == n && sql[j + 1] == '-')) {
            std::size_t k = sql.find('\n', j);
            copy_until(k == std::string_view::npos ? n : k + 1);
        } else if (c == '/' && j + 1 < n && sql[j + 1] == '*') {
            std::size_t k = sql.find("*/", j + 2);
            copy_until(k == std::string_view::npos ? n : k + 2);
        } else {
            copy_until(j + 1);
        }
    }
    if (next != args.size()) return errc::placeholder_mismatch;
    return {};
}

}  // namespace ambisql
