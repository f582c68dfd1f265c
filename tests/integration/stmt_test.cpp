// Prepared statements: the binary protocol, the statement cache, and the one-round-trip
// prepare + execute of MariaDB.
#include <cmath>
#include <fstream>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

namespace {


// `text` from the text protocol, `bin` from the binary one. The server renders FLOAT in
// text with 6 significant digits, and FLOAT/DOUBLE of fixed scale (decimals < 31) with
// that many decimals; everything else must match exactly.
bool same(const column& c, const value& text, const value& bin) {
    if (text.kind() == value_kind::float32 && bin.kind() == value_kind::float32)
        return std::fabs(text.get_float() - bin.get_float()) <= 1e-5 * std::fabs(bin.get_float());
    if (text.kind() == value_kind::float64 && bin.kind() == value_kind::float64 && c.decimals < 31)
        return std::fabs(text.get_double() - bin.get_double()) <= 0.5000001 * std::pow(10.0, -c.decimals);
    return text == bin;
}

// Prepared statements this connection holds on the server (performance schema).
std::int64_t server_statements(connection& probe, std::uint32_t id) {
    return probe
        .query("SELECT COUNT(*) FROM performance_schema.prepared_statements_instances p JOIN "
               "performance_schema.threads t ON p.OWNER_THREAD_ID = t.THREAD_ID WHERE t.PROCESSLIST_ID = ?",
               id)
        .row(0)[0]
        .as<std::int64_t>();
}

}  // namespace

TEST(Statements, EveryCorpusExpressionDecodesTheSameInTextAndBinary) {
    connection c(unix_config());
    auto corpus = expression_corpus();
    ASSERT_GE(corpus.size(), 300u);
    for (const auto& e : corpus) {
        const std::string sql = "SELECT " + e;
        results text = c.query(sql);
        results bin = c.execute(sql);
        ASSERT_EQ(bin.row_count(), 1u) << sql;
        ASSERT_EQ(bin.columns().size(), text.columns().size()) << sql;
        for (std::size_t i = 0; i < text.columns().size(); ++i) {
            value t = text.row(0)[i], b = bin.row(0)[i];
            EXPECT_EQ(text.columns()[i].type, bin.columns()[i].type) << sql;
            EXPECT_TRUE(same(text.columns()[i], t, b)) << sql << "\n  text:   " << to_string(t.kind()) << " " << t.to_string()
                                    << "\n  binary: " << to_string(b.kind()) << " " << b.to_string();
        }
    }
}

TEST(Statements, EveryColumnTypeOfATableInBinary) {
    connection c(tcp_config());
    std::string t = unique_table("stmt_types");
    c.query("CREATE TEMPORARY TABLE " + t +
            " (ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, "
            "iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, y YEAR, b BIT(64), fl FLOAT, db DOUBLE, "
            "d DECIMAL(65,30), dt DATE, ts TIMESTAMP(6) NULL, dtm DATETIME(6), tm TIME(6), ch CHAR(5), vc VARCHAR(20), "
            "bn BINARY(3), vb VARBINARY(10), tx TEXT, bl BLOB, e ENUM('x','y'), st SET('p','q'), j JSON)");
    c.query("INSERT INTO " + t +
            " VALUES (-128, 255, -32768, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, "
            "18446744073709551615, 2155, b'1111111111111111111111111111111111111111111111111111111111111111', "
            "-3.5, 1.7976931348623157e308, '-12345678901234567890123456789012345.123456789012345678901234567890', "
            "'0000-00-00', '2038-01-19 03:14:07.999999', '9999-12-31 23:59:59.999999', '-838:59:59.000000', 'ab', "
            "'it''s', X'000102', X'FF00', 'text', X'DEADBEEF', 'y', 'p,q', '{\"k\": [1, 2]}'),"
            "(127, 0, 32767, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 1901, b'0', 0, 0, 0, "
            "'2024-02-29', NULL, '1000-01-01 00:00:00', '00:00:00.000001', '', '', X'', X'', '', X'', 'x', '', "
            "'[]'),"
            "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
            "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)");
    results text = c.query("SELECT * FROM " + t);
    results bin = c.execute("SELECT * FROM " + t);
    ASSERT_EQ(bin.row_count(), 3u);
    for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t i = 0; i < text.columns().size(); ++i)
            EXPECT_TRUE(same(text.columns()[i], text.row(r)[i], bin.row(r)[i]))
                << "row " << r << " column " << text.columns()[i].name << ": text " << text.row(r)[i].to_string()
                << " binary " << bin.row(r)[i].to_string();
    EXPECT_EQ(bin.row(0).at("bu").get_uint(), UINT64_MAX);
    EXPECT_EQ(bin.row(0).at("tm").get_time(), (sql_time{true, 838, 59, 59, 0}));
    EXPECT_EQ(bin.row(0).at("dt").get_date(), (date{0, 0, 0}));
    EXPECT_EQ(bin.row(0).at("bl").kind(), value_kind::blob);
    for (std::size_t i = 0; i < bin.columns().size(); ++i) EXPECT_TRUE(bin.row(2)[i].is_null()) << i;
}

TEST(Statements, ParametersOfEveryTypeRoundTrip) {
    connection c(unix_config());
    const std::string big(1 << 20, 'q');
    const std::uint8_t raw[] = {0, 1, 0x27, 0x5C, 0xFF};
    results r = c.execute("SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?", std::int64_t(INT64_MIN), std::uint64_t(UINT64_MAX),
                          2.5, "it's \\ \"quoted\"", bytes{std::as_bytes(std::span(raw))}, date{2024, 2, 29},
                          datetime{1999, 12, 31, 23, 59, 59, 999999}, sql_time{true, 100, 2, 3, 4}, nullptr, true,
                          std::string_view(big), -7);
    auto row = r.row(0);
    EXPECT_EQ(row[0].get_int(), INT64_MIN);
    EXPECT_EQ(row[1].get_uint(), UINT64_MAX);
    EXPECT_EQ(row[2].get_double(), 2.5);
    EXPECT_EQ(row[3].get_text(), "it's \\ \"quoted\"");
    EXPECT_EQ(row[4].get_text(), std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
    EXPECT_EQ(row[5].to_string(), "2024-02-29");
    EXPECT_EQ(row[6].get_datetime(), (datetime{1999, 12, 31, 23, 59, 59, 999999}));
    EXPECT_EQ(row[7].get_time(), (sql_time{true, 100, 2, 3, 4}));
    EXPECT_TRUE(row[8].is_null());
    EXPECT_EQ(row[9].get_int(), 1);
    EXPECT_EQ(row[10].get_text().size(), big.size());
    EXPECT_EQ(row[11].get_int(), -7);
}

TEST(Statements, ExplicitPrepareExecuteResetClose) {
    connection c(tcp_config());
    std::string t = unique_table("stmt_explicit");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT PRIMARY KEY, v VARCHAR(10))");
    statement ins = c.prepare("INSERT INTO " + t + " VALUES (?, ?)");
    EXPECT_TRUE(ins.valid());
    EXPECT_EQ(ins.params, 2);
    EXPECT_EQ(ins.columns, 0);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(c.execute(ins, i, "v" + std::to_string(i)).affected_rows(), 1u);
    statement sel = c.prepare("SELECT v FROM " + t + " WHERE id = ?");
    EXPECT_EQ(sel.columns, 1);
    EXPECT_EQ(c.execute(sel, 7).row(0)[0].get_text(), "v7");
    EXPECT_EQ(c.execute(sel, 70).row_count(), 0u);
    // Misuse is reported and changes nothing.
    try {
        c.execute(sel, 1, 2);
        ADD_FAILURE() << "a wrong parameter count was accepted";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::placeholder_mismatch));
        EXPECT_TRUE(e.connection_usable());
    }
    try {
        c.execute(ins, 1, "dup");
        ADD_FAILURE() << "a duplicate key was accepted";
    } catch (const error& e) {
        EXPECT_EQ(e.server_code(), 1062);
    }
    c.reset_statement(sel);
    EXPECT_EQ(c.execute(sel, 3).row(0)[0].get_text(), "v3");
    std::uint32_t id = c.connection_id();
    connection probe(tcp_config());
    EXPECT_EQ(server_statements(probe, id), 2);
    c.close_statement(ins);
    c.close_statement(sel);
    c.ping();  // closes have no answer: a round trip shows the server handled them
    EXPECT_EQ(server_statements(probe, id), 0);
    try {
        c.execute(sel, 3);
        ADD_FAILURE() << "a closed statement executed";
    } catch (const error& e) {
        EXPECT_EQ(e.server_code(), 1243);  // unknown prepared statement handler
    }
    EXPECT_EQ(c.query("SELECT 1").row(0)[0].get_int(), 1);
}

TEST(Statements, TenThousandExecutesThroughACacheOf64NeverExceedIt) {
    config cfg = unix_config();
    cfg.statement_cache_size = 64;
    connection c(cfg);
    connection probe(unix_config());
    const std::uint32_t id = c.connection_id();
    std::int64_t worst = 0;
    for (int i = 0; i < 10000; ++i) {
        const int k = (i * 7919) % 100;  // 100 distinct statements, in a scattered order
        auto r = c.execute("SELECT ? + " + std::to_string(k), i);
        ASSERT_EQ(r.row(0)[0].get_int(), i + k);
        if (i % 1000 == 999) worst = std::max(worst, server_statements(probe, id));
    }
    EXPECT_EQ(c.cached_statements(), 64u);
    EXPECT_LE(worst, 64);
    EXPECT_GE(worst, 63);  // the cache is used, not bypassed
    EXPECT_LE(server_statements(probe, id), 64);
}

TEST(Statements, AFailedPrepareInTheSameRoundTripLeavesTheConnectionInStep) {
    connection c(unix_config());
    for (int i = 0; i < 3; ++i) {
        try {
            c.execute("SELEC ?", 1);
            ADD_FAILURE() << "a syntax error was accepted";
        } catch (const error& e) {
            EXPECT_EQ(e.server_code(), 1064) << e.what();
            EXPECT_TRUE(e.connection_usable());
        }
        EXPECT_EQ(c.execute("SELECT ? * 2", 21).row(0)[0].get_int(), 42);
    }
    EXPECT_EQ(c.cached_statements(), 1u);
    try {  // a statement that prepares but fails when it runs
        c.execute("SELECT * FROM no_such_table_stmt WHERE a = ?", 1);
        ADD_FAILURE();
    } catch (const error& e) {
        EXPECT_EQ(e.server_code(), 1146);
    }
    EXPECT_EQ(c.query("SELECT 5").row(0)[0].get_int(), 5);
}

TEST(Statements, ResetConnectionClearsTheCache) {
    connection c(unix_config());
    connection probe(unix_config());
    c.execute("SELECT ?", 1);
    c.execute("SELECT ?, ?", 1, 2);
    EXPECT_EQ(c.cached_statements(), 2u);
    c.reset_connection();
    EXPECT_EQ(c.cached_statements(), 0u);
    EXPECT_EQ(server_statements(probe, c.connection_id()), 0);
    EXPECT_EQ(c.execute("SELECT ?", 9).row(0)[0].get_int(), 9);
}

TEST(Statements, CacheSizeZeroClosesEachStatementAfterUse) {
    config cfg = unix_config();
    cfg.statement_cache_size = 0;
    connection c(cfg);
    connection probe(unix_config());
    for (int i = 0; i < 20; ++i) EXPECT_EQ(c.execute("SELECT ?", i).row(0)[0].get_int(), i);
    c.ping();  // carries the last pending close
    EXPECT_EQ(c.cached_statements(), 0u);
    EXPECT_EQ(server_statements(probe, c.connection_id()), 0);
}

TEST(Statements, StoredProcedureResultsAndStreaming) {
    connection c(tcp_config());
    std::string p = unique_table("stmt_proc");
    c.query("CREATE PROCEDURE " + p + "(IN n INT) BEGIN SELECT n AS a; SELECT n + 1 AS b, 'x' AS c; END");
    results r = c.execute("CALL " + p + "(?)", 41);
    c.query("DROP PROCEDURE " + p);
    ASSERT_GE(r.size(), 3u);  // two resultsets and the CALL's own status
    EXPECT_EQ(r[0].at(0)[0].get_int(), 41);
    EXPECT_EQ(r[1].at(0)[0].get_int(), 42);
    EXPECT_EQ(r[1].at(0)[1].get_text(), "x");

    auto s = c.stream_execute("SELECT seq, CAST(seq AS DOUBLE) / 2, CONCAT('r', seq) FROM seq_1_to_50000 WHERE seq > ?", 0);
    row_view row;
    std::int64_t n = 0, sum = 0;
    while (s.next(row)) {
        ++n;
        sum += row[0].get_int();
        ASSERT_EQ(row[1].get_double(), row[0].get_int() / 2.0);
    }
    EXPECT_EQ(n, 50000);
    EXPECT_EQ(sum, 50000LL * 50001 / 2);
    EXPECT_EQ(c.execute("SELECT ?", "after").row(0)[0].get_text(), "after");
}

TEST(Statements, ExecuteManyInsertsEveryRowInBulk) {
    connection c(unix_config());
    std::string t = unique_table("bulk");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT PRIMARY KEY, k BIGINT UNSIGNED, c VARCHAR(40), d DATETIME(6))");
    std::vector<sql_arg> values;
    std::vector<std::string> texts;
    const int rows = 100000;
    texts.reserve(rows);
    for (int i = 0; i < rows; ++i) texts.push_back("row-" + std::to_string(i) + (i % 7 ? "" : " it's"));
    for (int i = 0; i < rows; ++i) {
        values.emplace_back(i);
        values.emplace_back(std::uint64_t(i) * 1000003u);
        values.emplace_back(i % 11 ? sql_arg(texts[i]) : sql_arg(nullptr));
        values.emplace_back(datetime{2024, 1, 1, 0, 0, static_cast<std::uint8_t>(i % 60), static_cast<std::uint32_t>(i)});
    }
    EXPECT_EQ(c.execute_many("INSERT INTO " + t + " VALUES (?, ?, ?, ?)", values, 4), std::uint64_t(rows));
    results r = c.query("SELECT COUNT(*), CAST(SUM(k) AS UNSIGNED), CAST(SUM(c IS NULL) AS SIGNED) FROM " + t);
    EXPECT_EQ(r.row(0)[0].get_int(), rows);
    std::uint64_t sum = 0;
    for (int i = 0; i < rows; ++i) sum += std::uint64_t(i) * 1000003u;
    EXPECT_EQ(r.row(0)[1].as<std::uint64_t>(), sum);
    EXPECT_EQ(r.row(0)[2].as<std::int64_t>(), (rows + 10) / 11);
    results one = c.execute("SELECT c, d FROM " + t + " WHERE id = ?", 70);
    EXPECT_EQ(one.row(0)[0].get_text(), "row-70 it's");
    EXPECT_EQ(one.row(0)[1].get_datetime(), (datetime{2024, 1, 1, 0, 0, 10, 70}));

    // A failing row: the error is reported, the connection stays usable.
    try {
        c.execute_many("INSERT INTO " + t + " (id) VALUES (?)", {{sql_arg(-1)}, {sql_arg(5)}});
        ADD_FAILURE() << "a duplicate key was accepted";
    } catch (const error& e) {
        EXPECT_EQ(e.server_code(), 1062);
        EXPECT_TRUE(e.connection_usable());
    }
    // A batch is one statement on the server: on this transactional table the failing
    // batch left nothing behind.
    EXPECT_EQ(c.query("SELECT COUNT(*) FROM " + t + " WHERE id < 0").row(0)[0].get_int(), 0);
    EXPECT_EQ(c.query("SELECT COUNT(*) FROM " + t).row(0)[0].get_int(), rows);
    // Kinds that change within a column (an int, then text) go in batches of their own.
    EXPECT_EQ(c.execute_many("INSERT INTO " + t + " (id) VALUES (?)", {{sql_arg(-2)}, {sql_arg("-3")}, {sql_arg(-4)}}),
              3u);
    EXPECT_EQ(c.query("SELECT CAST(SUM(id) AS SIGNED) FROM " + t + " WHERE id < 0").row(0)[0].as<std::int64_t>(), -9);
    // An identifier is refused before anything is sent.
    try {
        c.execute_many("INSERT INTO " + t + " (id) VALUES (?)", {{sql_arg(-5)}, {sql_arg(identifier{"id"})}});
        ADD_FAILURE() << "an identifier was bound";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::bad_value));
        EXPECT_TRUE(e.connection_usable());
    }
    EXPECT_EQ(c.query("SELECT COUNT(*) FROM " + t + " WHERE id = -5").row(0)[0].get_int(), 0);
}

// Review defect 5: INSERT ... RETURNING took the bulk path expecting an OK; the server
// answers it with a result set (its prepare says the statement has no columns): a protocol
// error, the connection lost, the rows committed all the same. Now the rows are read.
TEST(Statements, ExecuteManyOfAStatementThatReturnsRowsRunsEveryRowOnce) {
    connection c(unix_config());
    std::string t = unique_table("ret");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
    const std::string sql = "INSERT INTO " + t + " (v) VALUES (?) RETURNING id, v";
    EXPECT_EQ(c.execute_many(sql, {{sql_arg(10)}, {sql_arg(20)}, {sql_arg(30)}}), 3u);  // prepared in the operation
    EXPECT_EQ(c.execute_many(sql, {{sql_arg(40)}, {sql_arg(50)}}), 2u);                  // from the statement cache
    results r = c.query("SELECT COUNT(*), CAST(SUM(v) AS SIGNED) FROM " + t);
    EXPECT_EQ(r.row(0)[0].get_int(), 5);
    EXPECT_EQ(r.row(0)[1].as<std::int64_t>(), 150);
    // Rows that return nothing still go in bulk, and the connection is in step throughout.
    EXPECT_EQ(c.execute_many("UPDATE " + t + " SET v = v + 1 WHERE id = ?", {{sql_arg(1)}, {sql_arg(2)}}), 2u);
    EXPECT_EQ(c.execute("SELECT CAST(SUM(v) AS SIGNED) FROM " + t).row(0)[0].as<std::int64_t>(), 152);
}

// Review defect 6: all or nothing, whether the rows go in bulk batches or as executes, in
// autocommit mode (BEGIN ... COMMIT) or inside the caller's transaction (a savepoint).
TEST(Statements, ExecuteManyAppliesEveryRowOrNone) {
    connection c(unix_config());
    std::string t = unique_table("aon");
    c.query("CREATE TABLE " + t + " (id INT PRIMARY KEY, pad VARCHAR(2000))");
    struct drop {
        connection& c;
        std::string t;
        ~drop() { c.query("DROP TABLE IF EXISTS " + t); }
    } d{c, t};
    c.query("INSERT INTO " + t + " VALUES (5, '')");
    // Rows 1..999 and then a duplicate of 5 in another batch: ~2 MB, more than one batch.
    const std::string pad(1900, 'p');
    std::vector<std::vector<sql_arg>> rows;
    for (int i = 1000; i < 2000; ++i) rows.push_back({sql_arg(i), sql_arg(std::string_view(pad))});
    rows.push_back({sql_arg(5), sql_arg("dup")});
    auto count = [&] { return c.query("SELECT COUNT(*) FROM " + t).row(0)[0].as<std::int64_t>(); };
    EXPECT_THROW(c.execute_many("INSERT INTO " + t + " VALUES (?, ?)", rows), error);
    EXPECT_EQ(count(), 1) << "the batches before the failing one were rolled back too";
    EXPECT_FALSE(c.server_status() & server_status::in_trans);
    c.query("BEGIN");
    c.query("INSERT INTO " + t + " VALUES (6, 'mine')");
    EXPECT_THROW(c.execute_many("INSERT INTO " + t + " VALUES (?, ?)", rows), error);
    EXPECT_TRUE(c.server_status() & server_status::in_trans) << "the caller's transaction goes on";
    EXPECT_EQ(count(), 2) << "its own row stays, the failed rows do not";
    rows.pop_back();
    EXPECT_EQ(c.execute_many("INSERT INTO " + t + " VALUES (?, ?)", rows), 1000u);
    c.query("COMMIT");
    EXPECT_EQ(count(), 1002);
}

TEST(Statements, LargeParametersTravelAsLongData) {
    connection c(unix_config());
    std::string t = unique_table("longdata");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT, b LONGBLOB, s LONGTEXT)");
    std::string blob(20 << 20, '\0');
    for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>((i * 131) >> 3);
    std::string text(3 << 20, 'x');
    text[12345] = '\'';
    // Through the cache (not yet prepared: prepared first, since long data needs the id)...
    EXPECT_EQ(c.execute("INSERT INTO " + t + " VALUES (?, ?, ?)", 1, bytes(std::string_view(blob)), text)
                  .affected_rows(),
              1u);
    // ...and once it is cached.
    EXPECT_EQ(c.execute("INSERT INTO " + t + " VALUES (?, ?, ?)", 2, bytes(std::string_view(blob)), "small")
                  .affected_rows(),
              1u);
    results r = c.execute("SELECT b, s FROM " + t + " ORDER BY id");
    ASSERT_EQ(r.row_count(), 2u);
    EXPECT_TRUE(r.row(0)[0].get_text() == blob) << "20 MiB BLOB changed on the way";
    EXPECT_TRUE(r.row(0)[1].get_text() == text);
    EXPECT_TRUE(r.row(1)[0].get_text() == blob);
    EXPECT_EQ(r.row(1)[1].get_text(), "small");
    EXPECT_EQ(c.execute("SELECT LENGTH(?)", std::string_view(text)).row(0)[0].get_int(),
              static_cast<std::int64_t>(text.size()));
}

TEST(Statements, UnchangedColumnDefinitionsAreNotSentAgainAndChangesArrive) {
    connection c(tcp_config());
    std::string t = unique_table("meta");
    c.query("CREATE TABLE " + t + " (id INT PRIMARY KEY, v VARCHAR(20))");
    c.query("INSERT INTO " + t + " VALUES (1, 'one'), (2, 'two')");
    const std::string alias(200, 'q');
    auto bytes_sent = [&] {
        return c.query("SELECT CAST(VARIABLE_VALUE AS UNSIGNED) FROM information_schema.SESSION_STATUS "
                       "WHERE VARIABLE_NAME = 'BYTES_SENT'")
            .row(0)[0]
            .as<std::uint64_t>();
    };
    const std::string sql = "SELECT v AS " + alias + " FROM " + t + " WHERE id = ?";
    EXPECT_EQ(c.execute(sql, 1).row(0)[0].as<std::string_view>(), "one");
    const std::uint64_t before = bytes_sent();
    for (int i = 0; i < 10; ++i) {
        auto r = c.execute(sql, 2);
        ASSERT_EQ(r.columns().size(), 1u);
        EXPECT_EQ(r.columns()[0].name, alias) << "the definitions come from the cache";
        EXPECT_EQ(r.row(0)[0].as<std::string_view>(), "two");
    }
    const std::uint64_t sent = bytes_sent() - before;
    EXPECT_LT(sent, 10 * alias.size()) << "ten answers without their 200-byte column definition, and one status query";

    // The table changes under a prepared statement: the server sends the new definitions.
    statement all = c.prepare("SELECT * FROM " + t + " WHERE id = ?");
    auto two = c.execute(all, 1);
    EXPECT_EQ(two.columns().size(), 2u);
    c.query("ALTER TABLE " + t + " ADD COLUMN w DOUBLE DEFAULT 2.5");
    for (int i = 0; i < 2; ++i) {
        auto r = c.execute(all, 1);
        ASSERT_EQ(r.columns().size(), 3u);
        EXPECT_EQ(r.columns()[2].name, "w");
        EXPECT_EQ(r.row(0)[2].get_double(), 2.5);
    }
    c.close_statement(all);
    c.query("DROP TABLE " + t);
}

TEST(Statements, ParameterTypesChangingBetweenExecutesDecodeRight) {
    connection c(tcp_config());
    statement st = c.prepare("SELECT ?, CONCAT(?, '')");
    EXPECT_EQ(c.execute(st, 5, 6).row(0)[0].get_int(), 5);
    EXPECT_EQ(c.execute(st, 7, 8).row(0)[1].as<std::string_view>(), "8") << "types left out, values still right";
    auto r = c.execute(st, "x", 2.5);
    EXPECT_EQ(r.row(0)[0].as<std::string_view>(), "x");
    EXPECT_EQ(r.row(0)[1].as<std::string_view>(), "2.5");
    r = c.execute(st, nullptr, -1);
    EXPECT_TRUE(r.row(0)[0].is_null());
    EXPECT_EQ(r.row(0)[1].as<std::string_view>(), "-1");
    EXPECT_EQ(c.execute(st, 9, 10).row(0)[0].get_int(), 9);
    c.close_statement(st);
}

TEST(Statements, AStatementIsRefusedOnAnotherConnectionOrAfterAReconnectOrReset) {
    connection a(tcp_config()), b(tcp_config());
    statement sa = a.prepare("SELECT 'from a'");
    statement sb = b.prepare("SELECT 'from b'");
    // Ids are numbered per connection, so sa.id usually names one of b's statements too:
    // the trap this guards. Whether or not it does, b must refuse sa.
    try {
        b.execute(sa);
        FAIL() << "ran b's statement in place of a's";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::stale_handle));
        EXPECT_TRUE(e.connection_usable());
    }
    EXPECT_EQ(b.execute(sb).row(0)[0].as<std::string_view>(), "from b");
    b.reset_connection();
    EXPECT_THROW(b.execute(sb), error) << "the reset dropped it";
    pipeline p;
    auto stage = p.execute(sb);
    b.run(p);
    EXPECT_EQ(p[stage].error().code, make_error_code(errc::stale_handle));
    a.connect(tcp_config());  // a reconnect: a new session
    EXPECT_THROW(a.close_statement(sa), error);
    statement again = a.prepare("SELECT 'from a'");
    EXPECT_EQ(a.execute(again).row(0)[0].as<std::string_view>(), "from a");
}
