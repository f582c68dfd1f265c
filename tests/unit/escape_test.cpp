#include <gtest/gtest.h>

#include "ambisql/error.hpp"
#include "ambisql/format.hpp"

using namespace ambisql;

namespace {
std::string fmt(std::string_view sql, std::initializer_list<sql_arg> args, escaping e = {}) {
    std::string out;
    auto ec = format_sql(out, sql, std::span<const sql_arg>(args.begin(), args.size()), e);
    EXPECT_FALSE(ec) << ec.message();
    return out;
}
std::string lit(std::string_view s, escaping e = {}) {
    std::string out;
    EXPECT_FALSE(append_string_literal(out, s, e));
    return out;
}
}  // namespace

TEST(Escape, BackslashEscapesEverySpecialByte) {
    EXPECT_EQ(lit(std::string_view("a\0b", 3)), "'a\\0b'");
    EXPECT_EQ(lit("\n\r\\'\"\x1a"), "'\\n\\r\\\\\\'\\\"\\Z'");
    EXPECT_EQ(lit("plain"), "'plain'");
}

TEST(Escape, NoBackslashEscapesOnlyDoublesQuotes) {
    escaping e{true, false};
    EXPECT_EQ(lit("it's \\ fine", e), "'it''s \\ fine'");
    EXPECT_EQ(lit("\\'", e), "'\\'''");
}

TEST(Escape, AnUnknownCharacterSetRefusesTextButNotNumbers) {
    std::string out = "x";
    EXPECT_EQ(append_string_literal(out, "a'b", escaping{false, true}), make_error_code(errc::charset_unknown));
    EXPECT_EQ(out, "x");
    out.clear();
    EXPECT_FALSE(append_literal(out, sql_arg(42), escaping{false, true}));
    EXPECT_FALSE(append_literal(out, sql_arg(bytes(std::string_view("\xbf'"))), escaping{false, true}));
    EXPECT_EQ(out, "42X'BF27'");
}

TEST(Escape, MultibyteCharsetsAreEscapedCharacterByCharacter) {
    EXPECT_EQ(multibyte_of("gbk"), multibyte::gbk);
    EXPECT_EQ(multibyte_of("cp932"), multibyte::sjis);
    EXPECT_EQ(multibyte_of("utf8mb4"), multibyte::none);
    EXPECT_EQ(multibyte_of("latin1"), multibyte::none);
    auto in = [](multibyte mb, std::string_view s, bool nbe = false) {
        std::string out;
        auto ec = append_string_literal(out, s, escaping{nbe, false, mb});
        return ec ? "error: " + ec.message() : out;
    };
    const std::string bad = "error: " + make_error_code(errc::bad_text).message();
    // The classic: 0xBF alone before a quote. Escaped byte by byte, 0xBF 0x5C 0x27 reads as
    // the character 0xBF5C and a bare quote; a lead byte without its trailing byte is refused.
    for (auto mb : {multibyte::gbk, multibyte::big5, multibyte::gb18030, multibyte::gb2312})
        EXPECT_EQ(in(mb, "\xbf' OR 1=1 -- "), bad) << int(mb);
    EXPECT_EQ(in(multibyte::sjis, "\x81' OR 1=1 -- "), bad);
    EXPECT_EQ(in(multibyte::gbk, "\xbf"), bad);     // a lead byte at the end
    EXPECT_EQ(in(multibyte::gbk, "ab\x80"), bad);   // not a lead byte in gbk
    EXPECT_EQ(in(multibyte::big5, "\xfa\x40"), bad);  // nor 0xFA in big5
    // A character whose trailing byte is 0x5C keeps it: no backslash is doubled inside it.
    EXPECT_EQ(in(multibyte::gbk, "\xbf\x5c"), "'\xbf\x5c'");
    EXPECT_EQ(in(multibyte::gbk, "\xbf\x5c'"), "'\xbf\x5c\\''");
    EXPECT_EQ(in(multibyte::sjis, "\x95\x5c\\"), "'\x95\x5c\\\\'");                   // sjis 0x955C, then a backslash
    EXPECT_EQ(in(multibyte::big5, "\xa5\x5c'"), "'\xa5\x5c\\''");                      // big5 0xA55C
    EXPECT_EQ(in(multibyte::gb18030, "\x81\x30\x81\x30'"), "'\x81\x30\x81\x30\\''");  // four bytes
    EXPECT_EQ(in(multibyte::sjis, "\xb1'"), "'\xb1\\''");                               // half-width katakana
    EXPECT_EQ(in(multibyte::gbk, "\xbf\x5c'", true), "'\xbf\x5c'''");                  // NO_BACKSLASH_ESCAPES
    // ASCII is escaped as ever; the same bytes in a single-byte set are plain bytes.
    EXPECT_EQ(in(multibyte::gbk, "a'\n"), "'a\\'\\n'");
    EXPECT_EQ(in(multibyte::none, "\xbf'"), "'\xbf\\''");
}

TEST(Escape, Identifiers) {
    std::string out;
    append_identifier(out, "we`ird");
    EXPECT_EQ(out, "`we``ird`");
}

TEST(Escape, PlaceholdersOutsideQuotesAndComments) {
    EXPECT_EQ(fmt("SELECT ?, '?', \"?\", `?`, ? -- ?\n, ? /* ? */ # ?", {1, "x", nullptr}),
              "SELECT 1, '?', \"?\", `?`, 'x' -- ?\n, NULL /* ? */ # ?");
    EXPECT_EQ(fmt("SELECT 'it\\'s ?', ?", {2}), "SELECT 'it\\'s ?', 2");
    EXPECT_EQ(fmt("SELECT 'a''?', ?", {3}), "SELECT 'a''?', 3");
    EXPECT_EQ(fmt("SELECT 5-?", {2}), "SELECT 5-2");
}

TEST(Escape, EveryArgumentKind) {
    std::optional<int> none;
    std::optional<int> some = 7;
    std::uint64_t big = UINT64_MAX;
    std::string out = fmt("?,?,?,?,?,?,?,?,?,?,?",
                          {true, -5, big, 0.5, none, some, bytes(std::string_view("\x00\xff", 2)),
                           identifier{"t"}, date{2024, 2, 29}, datetime{2024, 2, 29, 1, 2, 3, 4},
                           sql_time{true, 100, 1, 2, 0}});
    EXPECT_EQ(out,
              "1,-5,18446744073709551615,0.5e0,NULL,7,X'00FF',`t`,'2024-02-29',"
              "'2024-02-29 01:02:03.000004','-100:01:02'");
}

TEST(Escape, CountMismatchAndNonFinite) {
    std::string out;
    sql_arg one[] = {sql_arg(1)};
    EXPECT_EQ(format_sql(out, "SELECT ?, ?", one, {}), make_error_code(errc::placeholder_mismatch));
    out.clear();
    EXPECT_EQ(format_sql(out, "SELECT 1", one, {}), make_error_code(errc::placeholder_mismatch));
    out.clear();
    sql_arg nan[] = {sql_arg(std::numeric_limits<double>::quiet_NaN())};
    EXPECT_EQ(format_sql(out, "SELECT ?", nan, {}), make_error_code(errc::bad_value));
}
