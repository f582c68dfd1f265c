// Differential test against the reference, libmariadb (linked into this test only):
// every expression of the corpus runs through the text protocol and through prepared
// statements in both drivers, and every value ambisql decodes must match what libmariadb
// returns for the same query.
#include <mysql.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

namespace {


struct reference {
    MYSQL* m = nullptr;
    reference() {
        config cfg = unix_config();
        m = mysql_init(nullptr);
        if (!mysql_real_connect(m, nullptr, cfg.user.c_str(), cfg.password.c_str(), cfg.database.c_str(), 0,
                                cfg.unix_socket.c_str(), 0))
            ADD_FAILURE() << "libmariadb connect: " << mysql_error(m);
    }
    ~reference() { mysql_close(m); }
};

bool is_integer(enum_field_types t) {
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG || t == MYSQL_TYPE_INT24 ||
           t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}
bool is_temporal(enum_field_types t) {
    return t == MYSQL_TYPE_DATE || t == MYSQL_TYPE_DATETIME || t == MYSQL_TYPE_TIMESTAMP || t == MYSQL_TYPE_TIME ||
           t == MYSQL_TYPE_NEWDATE;
}

// Splits "YYYY-MM-DD[ HH:MM:SS[.f]]" or "[-]H:MM:SS[.f]" into a MYSQL_TIME.
MYSQL_TIME parse_temporal(const std::string& s, bool time) {
    MYSQL_TIME t{};
    const char* p = s.c_str();
    if (time) {
        if (*p == '-') {
            t.neg = 1;
            ++p;
        }
        t.hour = static_cast<unsigned>(std::strtoul(p, const_cast<char**>(&p), 10));
        t.minute = static_cast<unsigned>(std::strtoul(p + 1, const_cast<char**>(&p), 10));
        t.second = static_cast<unsigned>(std::strtoul(p + 1, const_cast<char**>(&p), 10));
    } else {
        t.year = static_cast<unsigned>(std::strtoul(p, const_cast<char**>(&p), 10));
        t.month = static_cast<unsigned>(std::strtoul(p + 1, const_cast<char**>(&p), 10));
        t.day = static_cast<unsigned>(std::strtoul(p + 1, const_cast<char**>(&p), 10));
        if (*p == ' ') {
            t.hour = static_cast<unsigned>(std::strtoul(p + 1, const_cast<char**>(&p), 10));
            t.minute = static_cast<unsigned>(std::strtoul(p + 1, const_cast<char**>(&p), 10));
            t.second = static_cast<unsigned>(std::strtoul(p + 1, const_cast<char**>(&p), 10));
        }
    }
    if (*p == '.') {
        std::string frac(p + 1);
        frac.resize(6, '0');
        t.second_part = std::strtoul(frac.c_str(), nullptr, 10);
    }
    return t;
}

// The MYSQL_TIME view of one of our temporal values.
MYSQL_TIME ours_temporal(const value& v) {
    MYSQL_TIME t{};
    if (v.kind() == value_kind::date) {
        date d = v.get_date();
        t.year = d.year;
        t.month = d.month;
        t.day = d.day;
    } else if (v.kind() == value_kind::datetime) {
        datetime d = v.get_datetime();
        t.year = d.year;
        t.month = d.month;
        t.day = d.day;
        t.hour = d.hour;
        t.minute = d.minute;
        t.second = d.second;
        t.second_part = d.microsecond;
    } else {
        sql_time d = v.get_time();
        t.neg = d.negative;
        t.hour = d.hours;
        t.minute = d.minute;
        t.second = d.second;
        t.second_part = d.microsecond;
    }
    return t;
}

std::string show(const MYSQL_TIME& t) {
    char b[96];
    std::snprintf(b, sizeof b, "%s%u-%u-%u %u:%u:%u.%lu", t.neg ? "-" : "", t.year, t.month, t.day, t.hour, t.minute,
                  t.second, t.second_part);
    return b;
}
bool same_time(const MYSQL_TIME& a, const MYSQL_TIME& b) { return show(a) == show(b); }

// One value of ours against libmariadb's text for it.
void check_text(const std::string& sql, const MYSQL_FIELD& f, const char* ref, unsigned long len, const value& v,
                std::string_view raw) {
    SCOPED_TRACE(sql + " (text protocol)");
    if (!ref) {
        EXPECT_TRUE(v.is_null());
        return;
    }
    const std::string r(ref, len);
    EXPECT_EQ(raw, r);  // the same bytes reached both drivers
    if (is_integer(f.type)) {
        EXPECT_EQ(v.kind() == value_kind::uint64 ? std::to_string(v.get_uint()) : std::to_string(v.get_int()), r);
    } else if (f.type == MYSQL_TYPE_DOUBLE) {
        EXPECT_EQ(v.get_double(), std::strtod(r.c_str(), nullptr));
    } else if (f.type == MYSQL_TYPE_FLOAT) {
        EXPECT_EQ(v.get_float(), std::strtof(r.c_str(), nullptr));
    } else if (is_temporal(f.type)) {
        EXPECT_TRUE(same_time(ours_temporal(v), parse_temporal(r, f.type == MYSQL_TYPE_TIME)))
            << show(ours_temporal(v)) << " vs " << r;
    } else if (f.type == MYSQL_TYPE_BIT) {
        std::uint64_t bits = 0;
        for (char c : r) bits = (bits << 8) | static_cast<unsigned char>(c);
        EXPECT_EQ(v.get_uint(), bits);
    } else {
        EXPECT_EQ(v.get_text(), r);
    }
}

// Every column of `sql` through libmariadb's mysql_stmt API against ours (binary rows).
void check_binary(MYSQL* m, const std::string& sql, const results& ours) {
    SCOPED_TRACE(sql + " (binary protocol)");
    MYSQL_STMT* st = mysql_stmt_init(m);
    ASSERT_EQ(mysql_stmt_prepare(st, sql.c_str(), sql.size()), 0) << mysql_stmt_error(st);
    ASSERT_EQ(mysql_stmt_execute(st), 0) << mysql_stmt_error(st);
    MYSQL_RES* meta = mysql_stmt_result_metadata(st);
    ASSERT_NE(meta, nullptr);
    const unsigned n = mysql_num_fields(meta);
    MYSQL_FIELD* fields = mysql_fetch_fields(meta);
    ASSERT_EQ(n, ours.columns().size());
    std::vector<MYSQL_BIND> b(n);
    std::vector<long long> ints(n);
    std::vector<double> doubles(n);
    std::vector<float> floats(n);
    std::vector<MYSQL_TIME> times(n);
    std::vector<std::string> bufs(n, std::string(1 << 17, '\0'));
    std::vector<unsigned long> lens(n);
    std::vector<my_bool> nulls(n);
    for (unsigned i = 0; i < n; ++i) {
        b[i] = MYSQL_BIND{};
        b[i].is_null = &nulls[i];
        b[i].length = &lens[i];
        const enum_field_types t = fields[i].type;
        if (is_integer(t)) {
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = &ints[i];
            b[i].is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
        } else if (t == MYSQL_TYPE_DOUBLE) {
            b[i].buffer_type = MYSQL_TYPE_DOUBLE;
            b[i].buffer = &doubles[i];
        } else if (t == MYSQL_TYPE_FLOAT) {
            b[i].buffer_type = MYSQL_TYPE_FLOAT;
            b[i].buffer = &floats[i];
        } else if (is_temporal(t)) {
            b[i].buffer_type = t;
            b[i].buffer = &times[i];
        } else {
            b[i].buffer_type = MYSQL_TYPE_STRING;
            b[i].buffer = bufs[i].data();
            b[i].buffer_length = bufs[i].size();
        }
    }
    ASSERT_EQ(mysql_stmt_bind_result(st, b.data()), 0);
    ASSERT_EQ(mysql_stmt_fetch(st), 0) << mysql_stmt_error(st);
    row_view row = ours.row(0);
    for (unsigned i = 0; i < n; ++i) {
        value v = row[i];
        const enum_field_types t = fields[i].type;
        if (nulls[i]) {
            EXPECT_TRUE(v.is_null()) << i;
            continue;
        }
        if (is_integer(t)) {
            if (b[i].is_unsigned)
                EXPECT_EQ(v.get_uint(), static_cast<unsigned long long>(ints[i]));
            else
                EXPECT_EQ(v.get_int(), ints[i]);
        } else if (t == MYSQL_TYPE_DOUBLE) {
            EXPECT_EQ(v.get_double(), doubles[i]);
        } else if (t == MYSQL_TYPE_FLOAT) {
            EXPECT_EQ(v.get_float(), floats[i]);
        } else if (is_temporal(t)) {
            MYSQL_TIME ref = times[i];
            if (t == MYSQL_TYPE_TIME) {  // libmariadb folds days into hours
                ref.hour += ref.day * 24;
                ref.day = 0;
            }
            ref.time_type = MYSQL_TIMESTAMP_NONE;
            EXPECT_TRUE(same_time(ours_temporal(v), ref)) << show(ours_temporal(v)) << " vs " << show(ref);
        } else if (t == MYSQL_TYPE_BIT) {
            std::uint64_t bits = 0;
            for (unsigned long k = 0; k < lens[i]; ++k) bits = (bits << 8) | static_cast<unsigned char>(bufs[i][k]);
            EXPECT_EQ(v.get_uint(), bits);
        } else {
            EXPECT_EQ(v.get_text(), std::string_view(bufs[i].data(), lens[i]));
        }
    }
    mysql_free_result(meta);
    mysql_stmt_close(st);
}

}  // namespace

TEST(Reference, EveryCorpusValueMatchesLibmariadbInTextAndBinary) {
    reference ref;
    ASSERT_NE(ref.m, nullptr);
    connection c(unix_config());
    auto corpus = expression_corpus();
    ASSERT_GE(corpus.size(), 300u);
    std::size_t values = 0;
    for (const auto& e : corpus) {
        const std::string sql = "SELECT " + e;
        results text = c.query(sql);
        ASSERT_EQ(mysql_real_query(ref.m, sql.c_str(), sql.size()), 0) << mysql_error(ref.m);
        MYSQL_RES* r = mysql_store_result(ref.m);
        ASSERT_NE(r, nullptr);
        MYSQL_ROW row = mysql_fetch_row(r);
        unsigned long* len = mysql_fetch_lengths(r);
        MYSQL_FIELD* fields = mysql_fetch_fields(r);
        ASSERT_EQ(mysql_num_fields(r), text.columns().size()) << sql;
        for (unsigned i = 0; i < mysql_num_fields(r); ++i) {
            EXPECT_EQ(static_cast<int>(fields[i].type), static_cast<int>(text.columns()[i].type)) << sql;
            check_text(sql, fields[i], row[i], len[i], text.row(0)[i], text.row(0).raw(i));
            ++values;
        }
        mysql_free_result(r);
        results bin = c.execute(sql);
        check_binary(ref.m, sql, bin);
    }
    EXPECT_GE(values, 300u);
}
