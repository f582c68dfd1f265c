// Every column type, read back from values the server stored from SQL literals.
#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

namespace {

struct fixture {
    connection c{tcp_config()};
    std::string t = unique_table("types");
    results r;
    row_view row(std::size_t i) { return r.row(i); }
    value at(std::size_t i, std::string_view col) { return r.row(i).at(col); }
};

}  // namespace

TEST(Types, IntegersAtTheirLimits) {
    fixture f;
    f.c.query("CREATE TEMPORARY TABLE " + f.t +
              " (ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT "
              "UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, y YEAR, b BIT(64), b1 BIT(1))");
    f.c.query("INSERT INTO " + f.t +
              " VALUES (-128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, "
              "-9223372036854775808, 18446744073709551615, 2155, b'1111111111111111111111111111111111111111111111111111111111111111', b'1'),"
              "(127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 1901, b'0', b'0'),"
              "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)");
    f.r = f.c.query("SELECT * FROM " + f.t);
    ASSERT_EQ(f.r.row_count(), 3u);
    EXPECT_EQ(f.at(0, "ti").get_int(), -128);
    EXPECT_EQ(f.at(0, "tu").get_uint(), 255u);
    EXPECT_EQ(f.at(0, "tu").kind(), value_kind::uint64);
    EXPECT_EQ(f.at(0, "si").get_int(), -32768);
    EXPECT_EQ(f.at(0, "su").get_uint(), 65535u);
    EXPECT_EQ(f.at(0, "mi").get_int(), -8388608);
    EXPECT_EQ(f.at(0, "mu").get_uint(), 16777215u);
    EXPECT_EQ(f.at(0, "i").get_int(), INT32_MIN);
    EXPECT_EQ(f.at(0, "iu").get_uint(), UINT32_MAX);
    EXPECT_EQ(f.at(0, "bi").get_int(), INT64_MIN);
    EXPECT_EQ(f.at(0, "bu").get_uint(), UINT64_MAX);
    EXPECT_EQ(f.at(0, "y").as<int>(), 2155);
    EXPECT_EQ(f.at(0, "b").get_uint(), UINT64_MAX);
    EXPECT_EQ(f.at(0, "b1").get_uint(), 1u);
    EXPECT_EQ(f.at(1, "ti").get_int(), 127);
    EXPECT_EQ(f.at(1, "bi").get_int(), INT64_MAX);
    EXPECT_EQ(f.at(1, "i").get_int(), INT32_MAX);
    EXPECT_EQ(f.at(1, "y").as<int>(), 1901);
    EXPECT_EQ(f.at(1, "b").get_uint(), 0u);
    for (std::size_t i = 0; i < f.r.columns().size(); ++i) EXPECT_TRUE(f.row(2)[i].is_null()) << i;
}

TEST(Types, FloatDoubleAndExactDecimal) {
    fixture f;
    f.c.query("CREATE TEMPORARY TABLE " + f.t +
              " (fl FLOAT, db DOUBLE, d1 DECIMAL(65,30), d2 DECIMAL(10,2) UNSIGNED, d3 DECIMAL(65,0))");
    f.c.query("INSERT INTO " + f.t +
              " VALUES (-3.40282e38, 1.7976931348623157e308, "
              "'-12345678901234567890123456789012345.123456789012345678901234567890', 99999999.99, "
              "'99999999999999999999999999999999999999999999999999999999999999999'),"
              "(1.5, 5e-324, '0.000000000000000000000000000001', 0, 0)");
    f.r = f.c.query("SELECT * FROM " + f.t);
    EXPECT_EQ(f.at(0, "fl").kind(), value_kind::float32);
    EXPECT_FLOAT_EQ(f.at(0, "fl").get_float(), -3.40282e38f);
    EXPECT_EQ(f.at(0, "db").get_double(), 1.7976931348623157e308);
    EXPECT_EQ(f.at(1, "db").get_double(), 5e-324);
    EXPECT_EQ(f.at(1, "fl").get_float(), 1.5f);
    EXPECT_EQ(f.at(0, "d1").kind(), value_kind::decimal);
    EXPECT_EQ(f.at(0, "d1").get_text(), "-12345678901234567890123456789012345.123456789012345678901234567890");
    EXPECT_EQ(f.at(1, "d1").get_text(), "0.000000000000000000000000000001");
    EXPECT_EQ(f.at(0, "d2").get_text(), "99999999.99");
    EXPECT_EQ(f.at(0, "d3").get_text(), std::string(65, '9'));
}

TEST(Types, TemporalWithMicrosecondsZeroDatesAndNegativeTime) {
    fixture f;
    f.c.query("SET SESSION sql_mode = ''");  // allow zero dates
    f.c.query("CREATE TEMPORARY TABLE " + f.t +
              " (d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), t0 TIME, dt0 DATETIME)");
    f.c.query("INSERT INTO " + f.t +
              " VALUES ('0000-00-00', '0000-00-00 00:00:00', '1970-01-01 00:00:01.000001', '-838:59:59.000000', "
              "'838:59:59', '9999-12-31 23:59:59'),"
              "('2024-02-29', '2024-02-29 13:14:15.123456', '2038-01-19 03:14:07.999999', '-00:00:00.5', "
              "'100:00:00', '1000-01-01 00:00:00'),"
              "('2024-02-30', NULL, NULL, NULL, NULL, NULL)");
    f.c.query("SET time_zone = '+00:00'");
    f.r = f.c.query("SELECT * FROM " + f.t);
    EXPECT_EQ(f.at(0, "d").get_date(), (date{0, 0, 0}));
    EXPECT_EQ(f.at(0, "dt").get_datetime(), (datetime{}));
    EXPECT_EQ(f.at(1, "dt").get_datetime(), (datetime{2024, 2, 29, 13, 14, 15, 123456}));
    EXPECT_EQ(f.at(1, "d").get_date(), (date{2024, 2, 29}));
    EXPECT_EQ(f.at(0, "dt0").get_datetime(), (datetime{9999, 12, 31, 23, 59, 59, 0}));
    EXPECT_EQ(f.at(1, "dt0").get_datetime(), (datetime{1000, 1, 1}));
    auto neg = f.at(0, "tm").get_time();
    EXPECT_TRUE(neg.negative);
    EXPECT_EQ(neg.hours, 838u);
    EXPECT_EQ(neg.minute, 59);
    EXPECT_EQ(neg.second, 59);
    auto half = f.at(1, "tm").get_time();
    EXPECT_TRUE(half.negative);
    EXPECT_EQ(half.total_microseconds(), -500000);
    EXPECT_EQ(f.at(0, "t0").get_time(), (sql_time{false, 838, 59, 59, 0}));
    EXPECT_EQ(f.at(1, "t0").get_time().hours, 100u) << "TIME beyond 24 hours";
    EXPECT_EQ(f.at(1, "ts").get_datetime(), (datetime{2038, 1, 19, 3, 14, 7, 999999}));
    // '2024-02-30' is invalid: stored as the zero date under this sql_mode.
    EXPECT_EQ(f.at(2, "d").get_date(), (date{0, 0, 0}));
    EXPECT_TRUE(f.at(2, "dt").is_null());
}

TEST(Types, StringsBinaryEnumSetJson) {
    fixture f;
    f.c.query("CREATE TEMPORARY TABLE " + f.t +
              " (c CHAR(5), vc VARCHAR(50), tx TEXT, bn BINARY(4), vb VARBINARY(10), bl BLOB, "
              "e ENUM('small','large'), s SET('a','b','c'), j JSON, lt LONGTEXT CHARACTER SET latin1)");
    f.c.query("INSERT INTO " + f.t +
              " VALUES ('ab', 'héllo wörld ✓', 'text', 'a\\0b', x'00ff10', x'DEADBEEF', 'large', 'a,c', "
              "'{\"k\": [1, 2]}', 'caf\\xe9'),"
              "('', '', '', '', '', '', NULL, '', NULL, NULL)");
    f.r = f.c.query("SELECT * FROM " + f.t);
    EXPECT_EQ(f.at(0, "c").get_text(), "ab");
    EXPECT_EQ(f.at(0, "c").kind(), value_kind::string);
    EXPECT_EQ(f.at(0, "vc").get_text(), "héllo wörld ✓");
    EXPECT_EQ(f.at(0, "tx").kind(), value_kind::string);
    EXPECT_EQ(f.at(0, "bn").kind(), value_kind::blob);
    EXPECT_EQ(f.at(0, "bn").get_text(), std::string_view("a\0b\0", 4)) << "BINARY pads with NUL";
    EXPECT_EQ(f.at(0, "vb").get_text(), std::string_view("\x00\xff\x10", 3));
    EXPECT_EQ(f.at(0, "bl").kind(), value_kind::blob);
    EXPECT_EQ(f.at(0, "bl").get_text(), "\xDE\xAD\xBE\xEF");
    EXPECT_EQ(f.at(0, "e").get_text(), "large");
    EXPECT_EQ(f.at(0, "s").get_text(), "a,c");
    EXPECT_EQ(f.at(0, "j").get_text(), "{\"k\": [1, 2]}");
    EXPECT_EQ(f.at(0, "lt").kind(), value_kind::string);
    EXPECT_EQ(f.at(1, "vc").get_text(), "");
    EXPECT_FALSE(f.at(1, "vc").is_null()) << "empty string is not NULL";
    EXPECT_TRUE(f.at(1, "e").is_null());
    const auto& cols = f.r.columns();
    EXPECT_TRUE(cols[6].flags & column_flag::enum_);
    EXPECT_TRUE(cols[7].flags & column_flag::set);
    EXPECT_EQ(cols[5].charset, binary_charset);
}

TEST(Types, ExpressionsAndNullType) {
    connection c(tcp_config());
    auto r = c.query("SELECT NULL, 1 + 1, 9223372036854775807 + 0, 18446744073709551615, -1.5, 1e300, CAST(1 AS UNSIGNED)");
    auto row = r.row(0);
    EXPECT_TRUE(row[0].is_null());
    EXPECT_EQ(row[1].get_int(), 2);
    EXPECT_EQ(row[2].get_int(), INT64_MAX);
    EXPECT_EQ(row[3].get_uint(), UINT64_MAX);
    EXPECT_EQ(row[4].get_text(), "-1.5");
    EXPECT_EQ(row[5].get_double(), 1e300);
    EXPECT_EQ(row[6].get_uint(), 1u);
}
