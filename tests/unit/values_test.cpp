#include <gtest/gtest.h>

#include "ambisql/error.hpp"
#include "ambisql/row.hpp"
#include "proto/result_builder.hpp"

using namespace ambisql;

namespace {
column col(column_type t, std::uint16_t flags = 0, std::uint16_t charset = 45) {
    column c;
    c.type = t;
    c.flags = flags;
    c.charset = charset;
    return c;
}
value dec(column_type t, std::string_view s, std::uint16_t flags = 0, std::uint16_t charset = 45) {
    value v;
    EXPECT_TRUE(decode_text_field(col(t, flags, charset), s, v)) << s;
    return v;
}
bool bad(column_type t, std::string_view s, std::uint16_t flags = 0) {
    value v;
    return !decode_text_field(col(t, flags), s, v);
}
}  // namespace

TEST(Values, SignedIntegerEdges) {
    EXPECT_EQ(dec(column_type::tiny, "-128").as<std::int64_t>(), -128);
    EXPECT_EQ(dec(column_type::longlong, "-9223372036854775808").get_int(), INT64_MIN);
    EXPECT_EQ(dec(column_type::longlong, "9223372036854775807").get_int(), INT64_MAX);
    EXPECT_EQ(dec(column_type::int24, "-8388608").as<int>(), -8388608);
    EXPECT_TRUE(bad(column_type::longlong, "9223372036854775808"));
    EXPECT_TRUE(bad(column_type::long_, "12a"));
    EXPECT_TRUE(bad(column_type::long_, ""));
}

TEST(Values, UnsignedIntegerEdges) {
    auto v = dec(column_type::longlong, "18446744073709551615", column_flag::unsigned_);
    EXPECT_EQ(v.kind(), value_kind::uint64);
    EXPECT_EQ(v.get_uint(), UINT64_MAX);
    EXPECT_THROW(v.get_int(), error);
    EXPECT_THROW(v.as<std::uint32_t>(), error);
    EXPECT_EQ(dec(column_type::tiny, "255", column_flag::unsigned_).as<std::uint8_t>(), 255);
    EXPECT_TRUE(bad(column_type::longlong, "-1", column_flag::unsigned_));
}

TEST(Values, NarrowingIsChecked) {
    auto v = dec(column_type::long_, "300");
    EXPECT_THROW(v.as<std::int8_t>(), error);
    EXPECT_EQ(v.as<std::int16_t>(), 300);
    auto n = dec(column_type::long_, "-1");
    EXPECT_THROW(n.as<std::uint64_t>(), error);
}

TEST(Values, FloatingPoint) {
    auto f = dec(column_type::float_, "3.40282e38");
    EXPECT_EQ(f.kind(), value_kind::float32);
    EXPECT_FLOAT_EQ(f.get_float(), 3.40282e38f);
    auto d = dec(column_type::double_, "-1.7976931348623157e308");
    EXPECT_EQ(d.get_double(), -1.7976931348623157e308);
    EXPECT_EQ(dec(column_type::double_, "5e-324").get_double(), 5e-324);
    EXPECT_TRUE(bad(column_type::double_, "1.0x"));
}

TEST(Values, DecimalStaysExactText) {
    std::string big = "-12345678901234567890123456789012345.123456789012345678901234567890";
    auto v = dec(column_type::newdecimal, big);
    EXPECT_EQ(v.kind(), value_kind::decimal);
    EXPECT_EQ(v.get_text(), big);
    EXPECT_TRUE(bad(column_type::newdecimal, "1.2.3"));
    EXPECT_TRUE(bad(column_type::newdecimal, "1e5"));
}

TEST(Values, DatesIncludingZeroDate) {
    EXPECT_EQ(dec(column_type::date, "2024-02-29").get_date(), (date{2024, 2, 29}));
    EXPECT_EQ(dec(column_type::date, "0000-00-00").get_date(), (date{0, 0, 0}));
    EXPECT_EQ(dec(column_type::date, "9999-12-31").get_date(), (date{9999, 12, 31}));
    EXPECT_TRUE(bad(column_type::date, "2024-13-01"));
    EXPECT_TRUE(bad(column_type::date, "2024-1-01"));
}

TEST(Values, DatetimeWithMicroseconds) {
    EXPECT_EQ(dec(column_type::datetime, "2024-01-02 03:04:05.123456").get_datetime(),
              (datetime{2024, 1, 2, 3, 4, 5, 123456}));
    EXPECT_EQ(dec(column_type::datetime, "2024-01-02 03:04:05.5").get_datetime(),
              (datetime{2024, 1, 2, 3, 4, 5, 500000}));
    EXPECT_EQ(dec(column_type::timestamp, "0000-00-00 00:00:00").get_datetime(), (datetime{}));
    EXPECT_EQ(dec(column_type::datetime, "1000-01-01 00:00:00").get_datetime(), (datetime{1000, 1, 1}));
    EXPECT_TRUE(bad(column_type::datetime, "2024-01-02 24:00:00"));
    EXPECT_TRUE(bad(column_type::datetime, "2024-01-02 03:04:05."));
    EXPECT_TRUE(bad(column_type::datetime, "2024-01-02 03:04:05.1234567"));
}

TEST(Values, TimeNegativeAndBeyondADay) {
    auto t = dec(column_type::time, "-838:59:59.000001").get_time();
    EXPECT_TRUE(t.negative);
    EXPECT_EQ(t.hours, 838u);
    EXPECT_EQ(t.minute, 59);
    EXPECT_EQ(t.second, 59);
    EXPECT_EQ(t.microsecond, 1u);
    EXPECT_EQ(t.total_microseconds(), -((838LL * 3600 + 59 * 60 + 59) * 1000000 + 1));
    EXPECT_EQ(dec(column_type::time, "00:00:00").get_time(), (sql_time{}));
    EXPECT_EQ(to_string(dec(column_type::time, "-01:02:03.5").get_time()), "-01:02:03.500000");
    EXPECT_TRUE(bad(column_type::time, "1:2:3"));
    EXPECT_TRUE(bad(column_type::time, "-"));
}

TEST(Values, TimeTotalOfAnyHoursIsDefined) {
    // sql_time's hours go to 4 billion; beyond what int64 microseconds hold (2.56 billion
    // hours) the total saturates instead of overflowing.
    EXPECT_EQ((sql_time{false, 9999999, 59, 59, 999999}).total_microseconds(),
              (9999999LL * 3600 + 59 * 60 + 59) * 1000000 + 999999);
    EXPECT_EQ((sql_time{false, 0xFFFFFFFFu, 0, 0, 0}).total_microseconds(), INT64_MAX);
    EXPECT_EQ((sql_time{true, 0xFFFFFFFFu, 255, 255, 0xFFFFFFFFu}).total_microseconds(), -INT64_MAX);
}

TEST(Values, YearBitAndStrings) {
    EXPECT_EQ(dec(column_type::year, "2155", column_flag::unsigned_).as<int>(), 2155);
    EXPECT_EQ(dec(column_type::bit, std::string_view("\x01\x00\xff", 3)).get_uint(), 0x0100FFu);
    EXPECT_EQ(dec(column_type::bit, std::string_view("\xff\xff\xff\xff\xff\xff\xff\xff", 8)).get_uint(), UINT64_MAX);
    EXPECT_EQ(dec(column_type::var_string, "héllo").kind(), value_kind::string);
    EXPECT_EQ(dec(column_type::blob, "bytes", column_flag::blob, 63).kind(), value_kind::blob);
    EXPECT_EQ(dec(column_type::string, "a,b", column_flag::set).get_text(), "a,b");
    EXPECT_EQ(dec(column_type::json, "{\"a\":1}").get_text(), "{\"a\":1}");
}

TEST(Values, TypeMismatchThrowsClientError) {
    auto v = dec(column_type::var_string, "abc");
    try {
        v.get_int();
        FAIL() << "expected a throw";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::client);
        EXPECT_EQ(e.code(), make_error_code(errc::value_type_mismatch));
    }
}

TEST(Values, RowViewDecodesAndReportsNull) {
    std::string data = "42";
    detail::field_ref f[2] = {{0, 2}, {0, detail::null_field}};
    column c[2] = {col(column_type::long_), col(column_type::var_string)};
    c[0].name = "id";
    c[1].name = "name";
    row_view r = detail::result_builder::row(reinterpret_cast<const std::uint8_t*>(data.data()), f, c, 2, false);
    EXPECT_EQ(r[0].as<int>(), 42);
    EXPECT_TRUE(r[1].is_null());
    EXPECT_TRUE(r.is_null(1));
    EXPECT_EQ(r.at("id").as<int>(), 42);
    EXPECT_THROW(r.at("nope"), error);
    EXPECT_THROW(r.at(2), error);
}
