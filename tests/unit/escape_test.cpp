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

TEST(Escape, UnsafeCharsetsAreRefused) {
    for (auto cs : {"big5", "sjis", "cp932", "gbk", "gb2312", "gb18030"}) EXPECT_TRUE(is_unsafe_charset(cs)) << cs;
    EXPECT_FALSE(is_unsafe_charset("utf8mb4"));
    std::string out;
    EXPECT_EQ(append_string_literal(out, "\xbf'", escaping{false, true}), make_error_code(errc::unsafe_charset));
    // Numbers and hex literals remain safe in any character set.
    out.clear();
    sql_arg n(42);
    EXPECT_FALSE(append_literal(out, n, escaping{false, true}));
    EXPECT_EQ(out, "42");
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
