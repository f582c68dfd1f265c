// The binary protocol from byte vectors: execute requests, binary rows and their values,
// and the prepare/execute exchanges of the session.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>

#include "ambisql/pipeline.hpp"
#include "proto/binary.hpp"
#include "proto/result_builder.hpp"
#include "proto/session.hpp"
#include "scripted.hpp"

using namespace ambisql;
using namespace ambisql::proto;
using namespace ambisql::test;

namespace {

column col(column_type t, bool uns = false, std::uint16_t charset = 45) {
    column c;
    c.type = t;
    c.flags = uns ? column_flag::unsigned_ : 0;
    c.charset = charset;
    return c;
}

// Decodes the field of a one-column binary row whose value bytes are `v`. The row is
// kept for the whole test program: text values are views into it.
value decode_one(const column& c, const bytes_t& v) {
    static std::deque<bytes_t> rows;
    const bytes_t& row = rows.emplace_back(cat({{0x00, 0x00}, v}));
    std::vector<detail::field_ref> f;
    EXPECT_TRUE(parse_binary_row(row, std::span<const column>(&c, 1), row.data(), f));
    if (f.size() != 1) return value();
    value out;
    EXPECT_TRUE(decode_binary_field(c, std::string_view(reinterpret_cast<const char*>(row.data() + f[0].offset),
                                                        f[0].length),
                                    out));
    return out;
}

bytes_t le(std::uint64_t v, int n) {
    bytes_t b;
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    return b;
}

}  // namespace

TEST(Binary, ExecuteRequestBindsEachTypeWithItsCode) {
    const std::uint8_t raw[] = {0xAB, 0x00};
    const sql_arg args[] = {sql_arg(-2), sql_arg(std::uint64_t(7)), sql_arg(nullptr), sql_arg("hi"),
                            sql_arg(bytes{std::as_bytes(std::span(raw))}), sql_arg(1.0),
                            sql_arg(date{2024, 2, 29}), sql_arg(datetime{2001, 2, 3, 4, 5, 6, 7}),
                            sql_arg(sql_time{true, 49, 2, 3, 0})};
    std::vector<std::uint8_t> out;
    ASSERT_FALSE(write_execute(out, 0x01020304, args));
    bytes_t want = {0x17, 4, 3, 2, 1, 0, 1, 0, 0, 0,
                    0x04, 0x00,  // NULL bitmap: parameter 2
                    1,           // types follow
                    8, 0, 8, 0x80, 6, 0, 254, 0, 252, 0, 5, 0, 10, 0, 12, 0, 11, 0};
    bytes_t values = cat({le(static_cast<std::uint64_t>(-2), 8), le(7, 8), {2, 'h', 'i'}, {2, 0xAB, 0x00},
                          {0, 0, 0, 0, 0, 0, 0xF0, 0x3F},  // 1.0
                          {4, 0xE8, 0x07, 2, 29},          // date
                          {11, 0xD1, 0x07, 2, 3, 4, 5, 6, 7, 0, 0, 0},
                          {8, 1, 2, 0, 0, 0, 1, 2, 3}});  // -49:02:03 = 2 days 1 h
    want.insert(want.end(), values.begin(), values.end());
    EXPECT_EQ(out, want);

    out.clear();
    const sql_arg bad[] = {sql_arg(identifier{"t"})};
    EXPECT_TRUE(write_execute(out, 1, bad));
    out.clear();
    ASSERT_FALSE(write_execute(out, 9, {}));
    EXPECT_EQ(out, (bytes_t{0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0}));  // no parameters: no bitmap
}

TEST(Binary, IntegersBySizeAndSignedness) {
    EXPECT_EQ(decode_one(col(column_type::tiny), {0x80}).get_int(), -128);
    EXPECT_EQ(decode_one(col(column_type::tiny, true), {0xFF}).get_uint(), 255u);
    EXPECT_EQ(decode_one(col(column_type::short_), le(0x8000, 2)).get_int(), -32768);
    EXPECT_EQ(decode_one(col(column_type::year, true), le(2155, 2)).get_uint(), 2155u);
    EXPECT_EQ(decode_one(col(column_type::int24), le(static_cast<std::uint32_t>(-8388608), 4)).get_int(), -8388608);
    EXPECT_EQ(decode_one(col(column_type::long_, true), le(0xFFFFFFFF, 4)).get_uint(), 0xFFFFFFFFu);
    EXPECT_EQ(decode_one(col(column_type::longlong), le(0x8000000000000000ull, 8)).get_int(), INT64_MIN);
    EXPECT_EQ(decode_one(col(column_type::longlong, true), le(~0ull, 8)).get_uint(), UINT64_MAX);
}

TEST(Binary, FloatsDecimalsBitsAndStrings) {
    float f = -3.5f;
    double d = 1.7976931348623157e308;
    bytes_t fb(4), db(8);
    std::memcpy(fb.data(), &f, 4);
    std::memcpy(db.data(), &d, 8);
    EXPECT_EQ(decode_one(col(column_type::float_), fb).get_float(), -3.5f);
    EXPECT_EQ(decode_one(col(column_type::double_), db).get_double(), d);
    value dec = decode_one(col(column_type::newdecimal), lenenc_str("-1.50"));
    EXPECT_EQ(dec.kind(), value_kind::decimal);
    EXPECT_EQ(dec.get_text(), "-1.50");
    EXPECT_EQ(decode_one(col(column_type::bit, true, 63), {3, 0x01, 0x02, 0x03}).get_uint(), 0x010203u);
    value s = decode_one(col(column_type::var_string), lenenc_str("héllo"));
    EXPECT_EQ(s.kind(), value_kind::string);
    EXPECT_EQ(s.get_text(), "héllo");
    EXPECT_EQ(decode_one(col(column_type::blob, false, 63), lenenc_str("b")).kind(), value_kind::blob);
    std::string big(300, 'z');  // a 0xFC length prefix
    EXPECT_EQ(decode_one(col(column_type::var_string), lenenc_str(big)).get_text(), big);
}

TEST(Binary, TemporalsOfEveryLength) {
    EXPECT_EQ(decode_one(col(column_type::date), {0}).get_date(), (date{0, 0, 0}));  // zero date
    EXPECT_EQ(decode_one(col(column_type::date), {4, 0xE8, 0x07, 2, 29}).get_date(), (date{2024, 2, 29}));
    EXPECT_EQ(decode_one(col(column_type::datetime), {4, 0xE8, 0x07, 2, 29}).get_datetime(),
              (datetime{2024, 2, 29, 0, 0, 0, 0}));
    EXPECT_EQ(decode_one(col(column_type::timestamp), {7, 0xE8, 0x07, 2, 29, 23, 59, 58}).get_datetime(),
              (datetime{2024, 2, 29, 23, 59, 58, 0}));
    EXPECT_EQ(decode_one(col(column_type::datetime), cat({{11, 0x0F, 0x27, 12, 31, 23, 59, 59}, le(999999, 4)}))
                  .get_datetime(),
              (datetime{9999, 12, 31, 23, 59, 59, 999999}));
    EXPECT_EQ(decode_one(col(column_type::time), {0}).get_time(), (sql_time{}));
    // -838:59:59 = 34 days 22 h
    EXPECT_EQ(decode_one(col(column_type::time), cat({{8, 1}, le(34, 4), {22, 59, 59}})).get_time(),
              (sql_time{true, 838, 59, 59, 0}));
    EXPECT_EQ(decode_one(col(column_type::time), cat({{12, 0}, le(0, 4), {12, 34, 56}, le(789000, 4)})).get_time(),
              (sql_time{false, 12, 34, 56, 789000}));
    value bad;
    EXPECT_FALSE(decode_binary_field(col(column_type::time), std::string_view("\x01\x02\x03", 3), bad));
    EXPECT_FALSE(decode_binary_field(col(column_type::date), std::string_view("\x01\x02", 2), bad));
    EXPECT_FALSE(decode_binary_field(col(column_type::longlong), std::string_view("\x01\x02\x03", 3), bad));
}

TEST(Binary, TimeOutsideItsRangeIsRefused) {
    // A server's TIME is at most 838:59:59 (34 days 22 h); the binary form has room for
    // 4 billion days and bytes up to 255 in every part. Refused beyond what the text form
    // allows (7 digits of hours), and any part beyond its unit, so no TIME that a hostile
    // server sends overflows total_microseconds().
    value bad;
    auto refused = [&](const bytes_t& b) {
        return !decode_binary_field(col(column_type::time),
                                    std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), bad);
    };
    EXPECT_TRUE(refused(cat({{0}, le(0xFFFFFFFF, 4), {23, 59, 59}})));
    EXPECT_TRUE(refused(cat({{1}, le(416667, 4), {0, 0, 0}})));             // 10,000,008 h
    EXPECT_TRUE(refused(cat({{0}, le(0, 4), {24, 0, 0}})));
    EXPECT_TRUE(refused(cat({{0}, le(0, 4), {0, 60, 0}})));
    EXPECT_TRUE(refused(cat({{0}, le(0, 4), {0, 0, 60}})));
    EXPECT_TRUE(refused(cat({{0}, le(0, 4), {0, 0, 0}, le(1000000, 4)})));
    EXPECT_EQ(decode_one(col(column_type::time), cat({{8, 0}, le(416666, 4), {15, 59, 59}})).get_time(),
              (sql_time{false, 9999999, 59, 59, 0}));  // the most the text form allows
}

TEST(Binary, NullBitmapStartsAtBitTwo) {
    // 9 columns: the bitmap takes (9 + 9) / 8 = 2 bytes; columns 0 and 7 are NULL.
    std::vector<column> cols(9, col(column_type::tiny));
    bytes_t row = {0x00, 0x04, 0x02};  // bit 2 -> column 0, bit 9 -> column 7
    for (int i = 0; i < 7; ++i) row.push_back(static_cast<std::uint8_t>(i + 1));
    std::vector<detail::field_ref> f;
    ASSERT_TRUE(parse_binary_row(row, cols, row.data(), f));
    ASSERT_EQ(f.size(), 9u);
    row_view v = detail::result_builder::row(row.data(), f.data(), cols.data(), cols.size(), true);
    EXPECT_TRUE(v[0].is_null());
    EXPECT_TRUE(v[7].is_null());
    EXPECT_EQ(v[1].get_int(), 1);
    EXPECT_EQ(v[6].get_int(), 6);
    EXPECT_EQ(v[8].get_int(), 7);
}

TEST(Binary, TruncatedOrOverlongRowsAreRejected) {
    const column cols[] = {col(column_type::longlong), col(column_type::var_string)};
    bytes_t good = cat({{0x00, 0x00}, le(5, 8), lenenc_str("abc")});
    std::vector<detail::field_ref> f;
    EXPECT_TRUE(parse_binary_row(good, cols, good.data(), f));
    for (std::size_t n = 0; n < good.size(); ++n) {
        f.clear();
        EXPECT_FALSE(parse_binary_row(byte_span(good.data(), n), cols, good.data(), f)) << n;
    }
    bytes_t extra = good;
    extra.push_back(0);
    EXPECT_FALSE(parse_binary_row(extra, cols, extra.data(), f));
    bytes_t header = good;
    header[0] = 0x01;
    EXPECT_FALSE(parse_binary_row(header, cols, header.data(), f));
}

namespace {
bytes_t prepare_ok_payload(std::uint32_t id, std::uint16_t cols, std::uint16_t params) {
    return cat({{0x00}, le(id, 4), le(cols, 2), le(params, 2), {0}, le(0, 2)});
}
}  // namespace

TEST(Binary, MariaDbPreparesAndExecutesInOneRoundTripAndCachesTheStatement) {
    scripted t;
    config cfg = scripted_config();
    cfg.statement_cache_size = 1;
    t.connect(cfg);
    results out;
    const sql_arg args[] = {sql_arg(5)};
    ASSERT_TRUE(t.s.start_execute("SELECT ?", args, &out));
    ASSERT_EQ(t.run(), next_action::read);
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 2u) << "PREPARE and EXECUTE go out together";
    EXPECT_EQ(sent[0], cat({{0x16}, to_bytes("SELECT ?")}));
    EXPECT_EQ(bytes_t(sent[1].begin(), sent[1].begin() + 5), (bytes_t{0x17, 0xFF, 0xFF, 0xFF, 0xFF}));
    bytes_t response = cat({packet(1, prepare_ok_payload(7, 1, 1)), packet(2, column_def("?", 8)),
                            packet(3, column_def("?", 8)),
                            // the execute's response, numbered from its own request
                            packet(1, {1}), packet(2, column_def("?", 8)), packet(3, cat({{0, 0}, le(5, 8)})),
                            packet(4, ok_payload(0, 0, 2, 0xFE))});
    ASSERT_EQ(t.feed(response, 3), next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(out[0][0][0].get_int(), 5);
    EXPECT_EQ(t.s.cached_statements(), 1u);

    // Cached: EXECUTE only, with the server's id.
    ASSERT_TRUE(t.s.start_execute("SELECT ?", args, &out));
    t.run();
    sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(bytes_t(sent[0].begin(), sent[0].begin() + 5), (bytes_t{0x17, 7, 0, 0, 0}));
    t.feed(cat({packet(1, {1}), packet(2, column_def("?", 8)), packet(3, cat({{0, 0}, le(6, 8)})),
                packet(4, ok_payload(0, 0, 2, 0xFE))}));
    EXPECT_EQ(out[0][0][0].get_int(), 6);

    // Another statement evicts it (cache of 1): its close goes out first, then the prepare.
    ASSERT_TRUE(t.s.start_execute("SELECT ? + 1", args, &out));
    t.run();
    sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 3u);
    EXPECT_EQ(sent[0], (bytes_t{0x19, 7, 0, 0, 0}));
    EXPECT_EQ(sent[1][0], 0x16);
    EXPECT_EQ(sent[2][0], 0x17);
}

TEST(Binary, AFailedPipelinedPrepareReadsTheExecutesErrorAndReportsThePrepares) {
    scripted t;
    config cfg = scripted_config();
    t.connect(cfg);
    results out;
    ASSERT_TRUE(t.s.start_execute("SELEC 1", {}, &out));
    t.run();
    t.take_sent_packets();
    ASSERT_EQ(t.feed(cat({packet(1, err_payload(1064, "42000", "syntax")),
                          packet(1, err_payload(1243, "HY000", "unknown statement"))})),
              next_action::done);
    EXPECT_EQ(t.s.diag().server_code, 1064);
    EXPECT_TRUE(t.s.connected());
    EXPECT_EQ(t.s.cached_statements(), 0u);
    ASSERT_TRUE(t.s.start_ping());  // in step: the next command works
    t.run();
    EXPECT_EQ(t.feed(packet(1, ok_payload())), next_action::done);
    EXPECT_FALSE(t.s.failed());
}

TEST(Binary, ExplicitPrepareWithEofPacketsReportsTheStatement) {
    scripted t;
    config cfg = scripted_config();
    t.connect(cfg, 0xF7FEF7FE & ~(1u << 24));  // no DEPRECATE_EOF
    statement st;
    ASSERT_TRUE(t.s.start_prepare("SELECT ?, ?", &st));
    t.run();
    EXPECT_EQ(t.take_sent_packets()[0], cat({{0x16}, to_bytes("SELECT ?, ?")}));
    ASSERT_EQ(t.feed(cat({packet(1, prepare_ok_payload(3, 2, 2)), packet(2, column_def("?", 8)),
                          packet(3, column_def("?", 8)), packet(4, eof_payload()), packet(5, column_def("a", 8)),
                          packet(6, column_def("b", 8)), packet(7, eof_payload())}),
                     2),
              next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(st.id, 3u);
    EXPECT_EQ(st.params, 2);
    EXPECT_EQ(st.columns, 2);
    const sql_arg one[] = {sql_arg(1)};
    EXPECT_FALSE(t.s.start_execute(st, one, nullptr));  // wrong count: refused before sending
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::placeholder_mismatch));
    ASSERT_TRUE(t.s.start_close_statement(st));
    EXPECT_EQ(t.run(), next_action::done);  // nothing to wait for
    EXPECT_EQ(t.take_sent_packets()[0], (bytes_t{0x19, 3, 0, 0, 0}));
}

TEST(Binary, APipelineSendsEveryStageInOneWriteAndSplitsTheResponses) {
    scripted t;
    config cfg = scripted_config();
    t.connect(cfg);
    pipeline p;
    auto q = p.query("SELECT ?", "it's");
    auto bad = p.query("SELECT nope");
    auto e1 = p.execute("SELECT ?", 1);
    auto e2 = p.execute("SELECT ?", 2);  // same SQL right after: no second prepare
    auto ping = p.ping();
    ASSERT_TRUE(t.s.start_pipeline(p));
    ASSERT_EQ(t.run(), next_action::read);
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 6u) << "query, query, prepare, execute, execute, ping";
    EXPECT_EQ(sent[0], cat({{0x03}, to_bytes("SELECT 'it\\'s'")}));
    EXPECT_EQ(sent[2][0], 0x16);
    EXPECT_EQ(bytes_t(sent[3].begin(), sent[3].begin() + 5), (bytes_t{0x17, 0xFF, 0xFF, 0xFF, 0xFF}));
    EXPECT_EQ(bytes_t(sent[4].begin(), sent[4].begin() + 5), (bytes_t{0x17, 0xFF, 0xFF, 0xFF, 0xFF}));
    EXPECT_EQ(sent[5], (bytes_t{0x0E}));
    auto text_result = [](std::string_view v) {
        return cat({packet(1, {1}), packet(2, column_def("x", 253)), packet(3, lenenc_str(v)),
                    packet(4, ok_payload(0, 0, 2, 0xFE))});
    };
    auto binary_result = [](std::uint64_t v) {
        return cat({packet(1, {1}), packet(2, column_def("?", 8)), packet(3, cat({{0, 0}, le(v, 8)})),
                    packet(4, ok_payload(0, 0, 2, 0xFE))});
    };
    bytes_t responses = cat({text_result("it's"), packet(1, err_payload(1054, "42S22", "Unknown column")),
                             packet(1, prepare_ok_payload(9, 1, 1)), packet(2, column_def("?", 8)),
                             packet(3, column_def("?", 8)), binary_result(1), binary_result(2),
                             packet(1, ok_payload())});
    ASSERT_EQ(t.feed(responses, 5), next_action::done);
    EXPECT_FALSE(t.s.failed());
    EXPECT_EQ(p[q].result().row(0)[0].get_text(), "it's");
    EXPECT_EQ(p[bad].error().server_code, 1054);
    EXPECT_TRUE(p[bad].error().connection_usable);
    EXPECT_EQ(p[e1].result().row(0)[0].get_int(), 1);
    EXPECT_EQ(p[e2].result().row(0)[0].get_int(), 2);
    EXPECT_TRUE(p[ping].ok());
    EXPECT_EQ(t.s.cached_statements(), 1u);
}

TEST(Binary, BulkExecuteRequestSendsTypesOnceAndIndicatorsPerValue) {
    const sql_arg values[] = {sql_arg(1), sql_arg("a"), sql_arg(nullptr), sql_arg("bc"), sql_arg(3), sql_arg(nullptr)};
    std::vector<std::uint8_t> out;
    std::size_t next = 0;
    ASSERT_FALSE(write_bulk_execute(out, 5, values, 2, 0, 1 << 20, next));
    EXPECT_EQ(next, 3u);
    bytes_t want = cat({{0xFA, 5, 0, 0, 0, 128, 0},  // id, SEND_TYPES_TO_SERVER
                        {8, 0, 254, 0},               // LONGLONG, STRING (from the first non-NULL values)
                        {0}, le(1, 8), {0, 1, 'a'},   // row 0
                        {1}, {0, 2, 'b', 'c'},        // row 1: NULL, "bc"
                        {0}, le(3, 8), {1}});         // row 2: 3, NULL
    EXPECT_EQ(out, want);
    // A small byte budget: one row per batch, resumable.
    out.clear();
    ASSERT_FALSE(write_bulk_execute(out, 5, values, 2, 1, 1, next));
    EXPECT_EQ(next, 2u);
    // A column that changes kind (an int, then text: SQLAlchemy sends a float and a Decimal
    // in one executemany) ends the batch there; the next one carries the new types.
    const sql_arg mixed[] = {sql_arg(1), sql_arg(nullptr), sql_arg("x"), sql_arg(2)};
    out.clear();
    ASSERT_FALSE(write_bulk_execute(out, 5, mixed, 1, 0, 1 << 20, next));
    EXPECT_EQ(next, 2u);
    EXPECT_EQ(out, cat({{0xFA, 5, 0, 0, 0, 128, 0}, {8, 0}, {0}, le(1, 8), {1}}));
    out.clear();
    ASSERT_FALSE(write_bulk_execute(out, 5, mixed, 1, 2, 1 << 20, next));
    EXPECT_EQ(next, 3u);
    EXPECT_EQ(out, cat({{0xFA, 5, 0, 0, 0, 128, 0}, {254, 0}, {0, 1, 'x'}}));
    const sql_arg named[] = {sql_arg(1), sql_arg(identifier{"t"})};
    out.clear();
    EXPECT_TRUE(write_bulk_execute(out, 5, named, 1, 0, 1 << 20, next));
    EXPECT_TRUE(out.empty());
}

TEST(Binary, ExecuteManyWithoutBulkOperationsPipelinesExecutes) {
    scripted t;  // its greeting has no MariaDB extended capabilities
    config cfg = scripted_config();
    t.connect(cfg);
    const sql_arg values[] = {sql_arg(1), sql_arg(2), sql_arg(3)};
    results out;
    ASSERT_TRUE(t.s.start_execute_many("INSERT INTO t VALUES (?)", values, 1, &out));
    t.run();
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::string(sent[0].begin() + 1, sent[0].end()), "BEGIN");  // all or nothing
    t.feed(packet(1, ok_payload(0, 0, 3)));
    sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 4u) << "one prepare, three executes, one write";
    EXPECT_EQ(sent[0][0], 0x16);
    for (int i = 1; i < 4; ++i) EXPECT_EQ(bytes_t(sent[i].begin(), sent[i].begin() + 5), (bytes_t{0x17, 0xFF, 0xFF, 0xFF, 0xFF}));
    ASSERT_EQ(t.feed(cat({packet(1, prepare_ok_payload(4, 0, 1)), packet(2, column_def("?", 8)),
                          packet(1, ok_payload(1)), packet(1, ok_payload(1)), packet(1, ok_payload(1))})),
              next_action::read);
    sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::string(sent[0].begin() + 1, sent[0].end()), "COMMIT");
    ASSERT_EQ(t.feed(packet(1, ok_payload())), next_action::done);
    EXPECT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(out.affected_rows(), 3u);
}

TEST(Binary, ExecuteManyOnMySqlPreparesThenPipelinesExecutesOfTheRealId) {
    for (std::size_t cache : {64u, 0u}) {
        scripted t;
        config cfg = scripted_config();
        cfg.statement_cache_size = cache;
        t.connect(cfg, 0xF7FEF7FF);  // CLIENT_MYSQL set: a MySQL server (no bulk, no id 0xFFFFFFFF)
        const sql_arg values[] = {sql_arg(1), sql_arg(2), sql_arg(3)};
        results out;
        ASSERT_TRUE(t.s.start_execute_many("INSERT INTO t VALUES (?)", values, 1, &out));
        t.run();
        auto sent = t.take_sent_packets();
        ASSERT_EQ(sent.size(), 1u);
        t.feed(packet(1, ok_payload(0, 0, 3)));  // its BEGIN
        sent = t.take_sent_packets();
        ASSERT_EQ(sent.size(), 1u) << "the prepare alone: its id is needed";
        EXPECT_EQ(sent[0][0], 0x16);
        EXPECT_EQ(t.feed(cat({packet(1, prepare_ok_payload(9, 0, 1)), packet(2, column_def("?", 8))})),
                  next_action::read);
        sent = t.take_sent_packets();
        ASSERT_EQ(sent.size(), 3u) << "three executes in one write";
        for (int i = 0; i < 3; ++i) EXPECT_EQ(bytes_t(sent[i].begin(), sent[i].begin() + 5), (bytes_t{0x17, 9, 0, 0, 0}));
        EXPECT_EQ(t.feed(cat({packet(1, ok_payload(1)), packet(1, ok_payload(1)), packet(1, ok_payload(1))})),
                  next_action::read);
        sent = t.take_sent_packets();
        if (cache == 0) {
            ASSERT_EQ(sent.size(), 2u) << "not cached: closed after its executes";
            EXPECT_EQ(sent[0], (bytes_t{0x19, 9, 0, 0, 0}));
        } else {
            ASSERT_EQ(sent.size(), 1u);
            EXPECT_EQ(t.s.cached_statements(), 1u);
        }
        EXPECT_EQ(std::string(sent.back().begin() + 1, sent.back().end()), "COMMIT");
        ASSERT_EQ(t.feed(packet(1, ok_payload())), next_action::done);
        EXPECT_FALSE(t.s.failed()) << t.s.diag().message;
        EXPECT_EQ(out.affected_rows(), 3u);
        if (cache != 0) {
            // Cached now: the next call pipelines at once, behind its BEGIN.
            ASSERT_TRUE(t.s.start_execute_many("INSERT INTO t VALUES (?)", values, 1, &out));
            t.run();
            t.take_sent_packets();
            t.feed(packet(1, ok_payload(0, 0, 3)));
            EXPECT_EQ(t.take_sent_packets().size(), 3u);
        }
    }
}

namespace {
// The text of a COM_QUERY the client sent, "" for any other command.
std::string query_text(const bytes_t& p) { return p.empty() || p[0] != 0x03 ? "" : std::string(p.begin() + 1, p.end()); }
// execute_many's BEGIN (or SAVEPOINT), answered: what the client sent first is returned.
std::string answer_begin(scripted& t, std::uint16_t status = 3) {
    auto sent = t.take_sent_packets();
    if (sent.size() != 1u) return "sent " + std::to_string(sent.size()) + " packets";
    t.feed(packet(1, ok_payload(0, 0, status)));
    return query_text(sent[0]);
}
constexpr std::uint32_t bulk_ext = 1u << 2;  // MariaDB STMT_BULK_OPERATIONS (capability bit 34)
}  // namespace

// Review defect 6: one outcome on MySQL (pipelined executes, which run on after a failing
// row) and MariaDB (bulk batches, each one statement) alike: all or nothing.
TEST(Binary, ExecuteManyIsAllOrNothingWherePipelinedExecutesRunOnAfterAFailure) {
    scripted t;
    t.connect(scripted_config(), 0xF7FEF7FF);  // MySQL
    const sql_arg values[] = {sql_arg(1), sql_arg(2), sql_arg(3)};
    results out;
    ASSERT_TRUE(t.s.start_execute_many("INSERT INTO t VALUES (?)", values, 1, &out));
    t.run();
    EXPECT_EQ(answer_begin(t), "BEGIN");  // autocommit, no transaction open
    EXPECT_EQ(t.take_sent_packets().size(), 1u);  // the prepare
    ASSERT_EQ(t.feed(cat({packet(1, prepare_ok_payload(9, 0, 1)), packet(2, column_def("?", 8))})), next_action::read);
    EXPECT_EQ(t.take_sent_packets().size(), 3u);
    // The second row fails; the third ran all the same (pipelined): all three are undone.
    ASSERT_EQ(t.feed(cat({packet(1, ok_payload(1, 0, 3)), packet(1, err_payload(1062, "23000", "Duplicate entry")),
                          packet(1, ok_payload(1, 0, 3))})),
              next_action::read);
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(query_text(sent[0]), "ROLLBACK");
    ASSERT_EQ(t.feed(packet(1, ok_payload(0, 0, 2))), next_action::done);
    EXPECT_EQ(t.s.diag().server_code, 1062) << "the row's failure, after the rollback";
    EXPECT_TRUE(t.s.diag().connection_usable);
}

TEST(Binary, ExecuteManyBulkBatchesCommitTogetherOrRollBackTogether) {
    for (bool fail : {false, true}) {
        scripted t;
        t.connect(scripted_config(), 0xF7FEF7FE, bulk_ext);  // MariaDB with bulk operations
        std::vector<sql_arg> values;
        const std::string big(400000, 'x');  // six rows of 400 kB: batches of about 1 MiB
        for (int i = 0; i < 6; ++i) values.emplace_back(std::string_view(big));
        results out;
        ASSERT_TRUE(t.s.start_execute_many("INSERT INTO t VALUES (?)", values, 1, &out));
        t.run();
        EXPECT_EQ(answer_begin(t), "BEGIN");
        EXPECT_EQ(t.take_sent_packets().size(), 1u);  // the prepare
        ASSERT_EQ(t.feed(cat({packet(1, prepare_ok_payload(5, 0, 1)), packet(2, column_def("?", 253))})),
                  next_action::read);
        auto sent = t.take_sent_packets();
        ASSERT_EQ(sent.size(), 1u);
        EXPECT_EQ(sent[0][0], 0xFA);
        ASSERT_EQ(t.feed(packet(1, ok_payload(5, 0, 3))), next_action::read);  // the first batch applied...
        sent = t.take_sent_packets();
        ASSERT_EQ(sent.size(), 1u);
        EXPECT_EQ(sent[0][0], 0xFA);
        t.feed(packet(1, fail ? err_payload(1062, "23000", "Duplicate entry") : ok_payload(1, 0, 3)));
        sent = t.take_sent_packets();
        ASSERT_EQ(sent.size(), 1u);
        EXPECT_EQ(query_text(sent[0]), fail ? "ROLLBACK" : "COMMIT");  // ...and undone with the second
        ASSERT_EQ(t.feed(packet(1, ok_payload(0, 0, 2))), next_action::done);
        if (fail) {
            EXPECT_EQ(t.s.diag().server_code, 1062);
        } else {
            EXPECT_FALSE(t.s.failed()) << t.s.diag().message;
            EXPECT_EQ(out.affected_rows(), 6u);
        }
    }
}

TEST(Binary, ExecuteManyInsideATransactionUsesASavepoint) {
    for (bool fail : {false, true}) {
        scripted t;
        t.connect(scripted_config(), 0xF7FEF7FE, bulk_ext);
        results out;
        ASSERT_TRUE(t.s.start_query("BEGIN", &out));
        t.run();
        t.feed(packet(1, ok_payload(0, 0, 3)));  // in a transaction now
        t.take_sent_packets();
        const sql_arg values[] = {sql_arg(1), sql_arg(2)};
        ASSERT_TRUE(t.s.start_execute_many("INSERT INTO t VALUES (?)", values, 1, &out));
        t.run();
        EXPECT_EQ(answer_begin(t), "SAVEPOINT ambisql_many");
        t.feed(cat({packet(1, prepare_ok_payload(5, 0, 1)), packet(2, column_def("?", 8))}));
        t.take_sent_packets();
        t.feed(packet(1, fail ? err_payload(1062, "23000", "Duplicate entry") : ok_payload(2, 0, 3)));
        auto sent = t.take_sent_packets();
        ASSERT_EQ(sent.size(), 1u);
        EXPECT_EQ(query_text(sent[0]), fail ? "ROLLBACK TO SAVEPOINT ambisql_many" : "RELEASE SAVEPOINT ambisql_many");
        ASSERT_EQ(t.feed(packet(1, ok_payload(0, 0, 3))), next_action::done);
        EXPECT_EQ(t.s.failed(), fail);
        EXPECT_TRUE(t.s.status() & 1) << "the caller's transaction goes on";
    }
}

// A refused BEGIN: nothing else was sent, the error is the BEGIN's.
TEST(Binary, ExecuteManyWhoseBeginFailsSendsNoRow) {
    scripted t;
    t.connect(scripted_config(), 0xF7FEF7FE, bulk_ext);
    const sql_arg values[] = {sql_arg(1)};
    results out;
    ASSERT_TRUE(t.s.start_execute_many("INSERT INTO t VALUES (?)", values, 1, &out));
    t.run();
    t.take_sent_packets();
    ASSERT_EQ(t.feed(packet(1, err_payload(1792, "25006", "read-only transaction"))), next_action::done);
    EXPECT_EQ(t.s.diag().server_code, 1792);
    EXPECT_TRUE(t.take_sent_packets().empty());
}

TEST(Binary, LargeParametersGoAheadAsLongDataForAKnownStatement) {
    scripted t;
    config cfg = scripted_config();
    t.connect(cfg);
    std::string big(long_data_threshold + 10, 'b');
    const sql_arg args[] = {sql_arg(7), sql_arg(std::string_view(big))};
    results out;
    ASSERT_TRUE(t.s.start_execute(statement{3, 2, 0}, args, &out));
    t.run();
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(bytes_t(sent[0].begin(), sent[0].begin() + 7), (bytes_t{0x18, 3, 0, 0, 0, 1, 0}));
    EXPECT_EQ(sent[0].size(), 7 + big.size());
    // The execute: types for both, the value of the first only.
    EXPECT_EQ(sent[1], cat({{0x17, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1, 8, 0, 254, 0}, le(7, 8)}));
}

namespace {
// A MariaDB session that negotiated CACHE_METADATA (extended capability bit 36).
void connect_cache_metadata(scripted& t) {
    config cfg = scripted_config();
    t.connect(cfg, 0xF7FEF7FE, 1u << 4);
}
// The execute payload's new-params-bound flag and what follows it (one parameter).
bytes_t after_bitmap(const bytes_t& execute) { return bytes_t(execute.begin() + 11, execute.end()); }
}  // namespace

TEST(Binary, ExecutesReuseTheColumnDefinitionsTheServerSkips) {
    scripted t;
    connect_cache_metadata(t);
    ASSERT_TRUE(t.s.capabilities() & (1ull << 36)) << "CACHE_METADATA negotiated";
    statement st;
    ASSERT_TRUE(t.s.start_prepare("SELECT a FROM t WHERE id = ?", &st));
    t.run();
    t.take_sent_packets();
    ASSERT_EQ(t.feed(cat({packet(1, prepare_ok_payload(4, 1, 1)), packet(2, column_def("?", 8)),
                          packet(3, column_def("a", 8))})),
              next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    const sql_arg args[] = {sql_arg(1)};
    results out;
    // Metadata skipped (flag 0 after the column count): the prepare's definitions are used.
    ASSERT_TRUE(t.s.start_execute(st, args, &out));
    t.run();
    ASSERT_EQ(t.feed(cat({packet(1, {1, 0}), packet(2, cat({{0, 0}, le(41, 8)})), packet(3, ok_payload(0, 0, 2, 0xFE))}),
                     2),
              next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    ASSERT_EQ(out[0].columns().size(), 1u);
    EXPECT_EQ(out[0].columns()[0].name, "a");
    EXPECT_EQ(out[0][0][0].get_int(), 41);
    // The definitions changed (flag 1): they are read, used, and kept for the next skip.
    ASSERT_TRUE(t.s.start_execute(st, args, &out));
    t.run();
    ASSERT_EQ(t.feed(cat({packet(1, {1, 1}), packet(2, column_def("b", 253)), packet(3, cat({{0, 0}, {2, 'h', 'i'}})),
                          packet(4, ok_payload(0, 0, 2, 0xFE))})),
              next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(out[0].columns()[0].name, "b");
    EXPECT_EQ(out[0][0][0].as<std::string_view>(), "hi");
    ASSERT_TRUE(t.s.start_execute(st, args, &out));
    t.run();
    ASSERT_EQ(t.feed(cat({packet(1, {1, 0}), packet(2, cat({{0, 0}, {2, 'y', 'o'}})), packet(3, ok_payload(0, 0, 2, 0xFE))})),
              next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(out[0].columns()[0].name, "b");
    EXPECT_EQ(out[0][0][0].as<std::string_view>(), "yo");
    // Text results carry the flag too (always 1).
    ASSERT_TRUE(t.s.start_query("SELECT 1", &out));
    t.run();
    ASSERT_EQ(t.feed(cat({packet(1, {1, 1}), packet(2, column_def("1", 3)), packet(3, {1, '1'}),
                          packet(4, ok_payload(0, 0, 2, 0xFE))})),
              next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(out[0][0][0].get_int(), 1);
    // A skip for a statement whose definitions this connection never saw: a clear error.
    ASSERT_TRUE(t.s.start_execute(statement{9, 1, 1}, args, &out));
    t.run();
    EXPECT_EQ(t.feed(cat({packet(1, {1, 0}), packet(2, cat({{0, 0}, le(1, 8)}))})), next_action::done);
    EXPECT_TRUE(t.s.failed());
    EXPECT_NE(t.s.diag().message.find("skipped column definitions"), std::string::npos) << t.s.diag().message;
}

TEST(Binary, ParameterTypesAreSentOnlyWhenTheServerDoesNotHaveThem) {
    scripted t;
    config cfg = scripted_config();
    t.connect(cfg);
    const statement st{5, 1, 0};
    results out;
    auto execute = [&](const sql_arg& a, bool fail = false) {
        const sql_arg args[] = {a};
        EXPECT_TRUE(t.s.start_execute(st, args, &out));
        t.run();
        auto sent = t.take_sent_packets();
        t.feed(packet(1, fail ? err_payload(1062, "23000", "duplicate") : ok_payload()));
        return after_bitmap(sent.at(0));
    };
    EXPECT_EQ(execute(sql_arg(7)), cat({{1, 8, 0}, le(7, 8)})) << "first execute: types bound";
    EXPECT_EQ(execute(sql_arg(8)), cat({{0}, le(8, 8)})) << "same types: left out";
    EXPECT_EQ(execute(sql_arg("x")), (bytes_t{1, 254, 0, 1, 'x'})) << "other types: sent again";
    EXPECT_EQ(execute(sql_arg("y"), true), (bytes_t{0, 1, 'y'}));
    EXPECT_EQ(execute(sql_arg("z")), (bytes_t{1, 254, 0, 1, 'z'})) << "after an error the types go again";
    ASSERT_TRUE(t.s.start_reset_statement(st));
    t.run();
    t.take_sent_packets();
    t.feed(packet(1, ok_payload()));
    EXPECT_EQ(execute(sql_arg("w")), (bytes_t{1, 254, 0, 1, 'w'})) << "after a reset too";
}
