// Traps in the public API made compile errors (checked here at compile time) or safe.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <type_traits>

#include "ambisql/connection.hpp"
#include "ambisql/format.hpp"
#include "ambisql/resultset.hpp"
#include "proto/result_builder.hpp"
#include "proto/wire.hpp"

using namespace ambisql;

// A plain char is a number or a character depending on the platform: not bindable.
static_assert(!std::is_constructible_v<sql_arg, char>);
static_assert(!std::is_constructible_v<sql_arg, char8_t>);
static_assert(std::is_constructible_v<sql_arg, signed char>);
static_assert(std::is_constructible_v<sql_arg, unsigned char>);

// resultset::iterator is the random access iterator its tag claims.
static_assert(std::random_access_iterator<resultset::iterator>);

// Views into a temporary results do not compile; a row of one owns its resultset.
template <class T>
concept columns_of_rvalue = requires { std::declval<T>().columns(); };
template <class T>
concept rows_begin_of_rvalue = requires { std::declval<T>().rows_begin(); };
static_assert(!columns_of_rvalue<results>);
static_assert(columns_of_rvalue<results&>);
static_assert(!rows_begin_of_rvalue<results>);
static_assert(std::is_same_v<decltype(std::declval<results>().row(0)), owned_row>);
static_assert(std::is_same_v<decltype(std::declval<results&>().row(0)), row_view>);
static_assert(!std::is_convertible_v<owned_row, row_view>);

// A row_stream cannot be made by hand (only a connection starts one).
static_assert(!std::is_constructible_v<row_stream, connection&>);

TEST(Api, ResultsetIteratorsDoRandomAccess) {
    // One VARCHAR column "n" (a column definition 41 payload), four text rows.
    resultset r;
    std::vector<std::uint8_t> def;
    for (auto part : {"def", "db", "t", "t", "n", "n"}) {
        def.push_back(static_cast<std::uint8_t>(std::strlen(part)));
        def.insert(def.end(), part, part + std::strlen(part));
    }
    const std::uint8_t fixed[] = {0x0c, 45, 0, 11, 0, 0, 0, 253, 0, 0, 0, 0, 0};
    def.insert(def.end(), std::begin(fixed), std::end(fixed));
    detail::result_builder::add_column(r, def);
    ASSERT_TRUE(detail::result_builder::finish_columns(r, 1));
    for (char c : std::string("dcab")) {
        const std::uint8_t row[] = {1, static_cast<std::uint8_t>(c)};
        ASSERT_TRUE(detail::result_builder::add_text_row(r, row));
    }
    auto b = r.begin(), e = r.end();
    EXPECT_EQ(e - b, 4);
    EXPECT_EQ(b[2][0].as<std::string_view>(), "a");
    EXPECT_EQ((*(e - 1))[0].as<std::string_view>(), "b");
    EXPECT_TRUE(b < e);
    auto it = b;
    it += 3;
    --it;
    EXPECT_EQ((*it)[0].as<std::string_view>(), "a");
    EXPECT_EQ(std::distance(r.begin(), r.end()), 4);
    auto found = std::find_if(r.begin(), r.end(), [](row_view v) { return v[0].as<std::string_view>() == "c"; });
    EXPECT_EQ(found - r.begin(), 1);
}
