// Queries end to end: results, errors, streaming, big values, escaping, misuse.
#include <atomic>
#include <memory>
#include <chrono>
#include <random>
#include <thread>

#include <poll.h>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

TEST(Query, OkPacketReportsAffectedRowsAndInsertId) {
    connection c(tcp_config());
    std::string t = unique_table("ok");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
    auto r = c.query("INSERT INTO " + t + " (v) VALUES (1), (2), (3)");
    EXPECT_EQ(r.affected_rows(), 3u);
    EXPECT_EQ(r.last_insert_id(), 1u);
    EXPECT_FALSE(r.first().has_rows());
    EXPECT_NE(r.first().ok().info.find("Records: 3"), std::string::npos) << r.first().ok().info;
    auto u = c.query("UPDATE " + t + " SET v = v + 1 WHERE v >= 2");
    EXPECT_EQ(u.affected_rows(), 2u);
    auto w = c.query("INSERT IGNORE INTO " + t + " (id, v) VALUES (1, 5)");
    EXPECT_EQ(w.affected_rows(), 0u);
    EXPECT_EQ(w.first().warning_count(), 1u) << "duplicate key ignored with a warning";
}

class BothEofStyles : public ::testing::TestWithParam<bool> {};

TEST_P(BothEofStyles, MultiStatementResults) {
    config cfg = tcp_config();
    cfg.deprecate_eof = GetParam();
    connection c(cfg);
    auto r = c.query("SELECT 1 AS a, 'x' AS b; DO 0; SELECT 2 UNION SELECT 3; SET @v = 5");
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(r[0].columns()[0].name, "a");
    EXPECT_EQ(r[0][0][1].as<std::string_view>(), "x");
    EXPECT_FALSE(r[1].has_rows());
    ASSERT_EQ(r[2].size(), 2u);
    EXPECT_EQ(r[2][1][0].as<int>(), 3);
    EXPECT_FALSE(r[3].has_rows());
    EXPECT_EQ(c.query("SELECT @v").row(0)[0].as<int>(), 5);
}

TEST_P(BothEofStyles, ErrorInTheMiddleOfAMultiStatement) {
    config cfg = tcp_config();
    cfg.deprecate_eof = GetParam();
    connection c(cfg);
    results r;
    std::error_code ec;
    c.query("SELECT 1; SELECT * FROM no_such_table_x; SELECT 3", r, ec);
    EXPECT_EQ(ec, std::error_code(1146, server_category()));
    EXPECT_EQ(c.last_error().kind, error_kind::server);
    EXPECT_EQ(c.last_error().sqlstate, "42S02");
    EXPECT_TRUE(c.last_error().connection_usable);
    ASSERT_EQ(r.size(), 1u) << "the statement before the error produced its result";
    EXPECT_EQ(r[0][0][0].as<int>(), 1);
    // Nothing of the failed batch is left on the wire.
    EXPECT_EQ(c.query("SELECT 42").row(0)[0].as<int>(), 42);
}

INSTANTIATE_TEST_SUITE_P(Eof, BothEofStyles, ::testing::Values(true, false));

TEST(Query, InterpolatedParametersRoundTrip) {
    connection c(tcp_config());
    std::string nasty = "it's \"quoted\" \\ back\\slash \\' \n\r\t \x1a end";
    nasty.push_back('\0');
    nasty += "after-nul";
    auto r = c.query("SELECT ?, ?, ?, ?, ?", nasty, -7, 3.25, nullptr, bytes(std::string_view("\x00\x01\xff", 3)));
    auto row = r.row(0);
    EXPECT_EQ(row[0].as<std::string_view>(), nasty);
    EXPECT_EQ(row[1].as<int>(), -7);
    EXPECT_EQ(row[2].as<double>(), 3.25);
    EXPECT_TRUE(row[3].is_null());
    EXPECT_EQ(row[4].as<std::string_view>(), std::string_view("\x00\x01\xff", 3));
}

TEST(Query, NoBackslashEscapesInjectionAttemptsRoundTrip) {
    connection c(tcp_config());
    c.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
    ASSERT_TRUE(c.escaping_rules().no_backslash_escapes) << "status flag read from the OK packet";
    std::string t = unique_table("nbe");
    c.query("CREATE TEMPORARY TABLE " + t + " (v TEXT)");
    const std::string attempts[] = {
        "\\'; DROP TABLE " + t + "; -- ",
        "\\",
        "'",
        "\\\\'' OR 1=1 -- ",
        "a\\'b\"c",
    };
    for (const auto& s : attempts) {
        c.query("DELETE FROM " + t);
        c.query("INSERT INTO " + t + " VALUES (?)", s);
        auto r = c.query("SELECT v, COUNT(*) OVER () FROM " + t);
        ASSERT_EQ(r.row_count(), 1u) << s;
        EXPECT_EQ(r.row(0)[0].as<std::string_view>(), s);
        EXPECT_EQ(c.query("SELECT ? = v FROM " + t, s).row(0)[0].as<int>(), 1);
    }
    c.query("SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')");
    EXPECT_FALSE(c.escaping_rules().no_backslash_escapes);
    EXPECT_EQ(c.query("SELECT ?", attempts[0]).row(0)[0].as<std::string_view>(), attempts[0]);
}

TEST(Query, TwentyMiBBlobBothWays) {
    config cfg = tcp_config();
    connection c(cfg);
    std::string t = unique_table("blob");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT, b LONGBLOB)");
    std::string blob(20 << 20, '\0');
    std::mt19937 rng(7);
    for (auto& ch : blob) ch = static_cast<char>(rng());
    // As a hex literal (a 40 MiB statement: three chunks on the wire)...
    c.query("INSERT INTO " + t + " VALUES (1, ?)", bytes(std::string_view(blob)));
    // ...and as an escaped string literal.
    c.query("INSERT INTO " + t + " VALUES (2, ?)", std::string_view(blob));
    auto r = c.query("SELECT id, b, LENGTH(b), MD5(b) = MD5(?) FROM " + t + " ORDER BY id", bytes(std::string_view(blob)));
    ASSERT_EQ(r.row_count(), 2u);
    for (auto row : r.rows()) {
        EXPECT_EQ(row[2].as<std::uint64_t>(), blob.size());
        EXPECT_EQ(row[3].as<int>(), 1) << "the server stored the exact bytes";
        EXPECT_TRUE(row[1].as<std::string_view>() == blob) << "the client read the exact bytes back";
    }
    // Also over TLS (records split differently).
    cfg.ssl = ssl_mode::required;
    connection s(cfg);
    auto big = s.query("SELECT REPEAT('ab', 10 << 20)");
    EXPECT_EQ(big.row(0)[0].as<std::string_view>().size(), 20u << 20);
}

TEST(Query, StreamingReadsRowsIncrementally) {
    connection c(unix_config());
    auto st = c.stream("SELECT seq, REPEAT('x', 100) FROM seq_1_to_200000");
    ASSERT_EQ(st.columns().size(), 2u);
    std::uint64_t n = 0, sum = 0;
    row_view row;
    while (st.next(row)) {
        ++n;
        sum += row[0].as<std::uint64_t>();
        ASSERT_EQ(row[1].as<std::string_view>().size(), 100u);
    }
    EXPECT_EQ(n, 200000u);
    EXPECT_EQ(sum, 200000ull * 200001 / 2);
    EXPECT_EQ(c.query("SELECT 1").row(0)[0].as<int>(), 1);
}

TEST(Query, StreamBlocksOtherCommandsUntilDiscarded) {
    connection c(tcp_config());
    auto st = c.stream("SELECT seq FROM seq_1_to_100000; SELECT 'second'");
    row_view row;
    ASSERT_TRUE(st.next(row));
    EXPECT_EQ(row[0].as<int>(), 1);
    try {
        c.query("SELECT 2");
        FAIL() << "a command ran while a streamed result was unfinished";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::result_pending));
        EXPECT_TRUE(e.connection_usable());
    }
    ASSERT_TRUE(st.next_result());
    ASSERT_TRUE(st.next(row));
    EXPECT_EQ(row[0].as<std::string_view>(), "second");
    EXPECT_FALSE(st.next(row));
    EXPECT_FALSE(st.next_result());
    EXPECT_EQ(c.query("SELECT 3").row(0)[0].as<int>(), 3);
    auto st2 = c.stream("SELECT seq FROM seq_1_to_100000");
    st2.discard();
    EXPECT_EQ(c.query("SELECT 4").row(0)[0].as<int>(), 4);
}

TEST(Query, PingSelectDbAndReset) {
    connection c(tcp_config());
    c.ping();
    c.select_db("mysql");
    EXPECT_EQ(c.query("SELECT DATABASE()").row(0)[0].as<std::string_view>(), "mysql");
    try {
        c.select_db("no_such_db_q");
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.server_code(), 1049);
    }
    c.query("SET @x = 1");
    c.reset_connection();
    EXPECT_TRUE(c.query("SELECT @x").row(0)[0].is_null()) << "user variables are gone after a reset";
}

TEST(Query, MisuseFromTwoThreadsGivesOperationInProgress) {
    connection c(tcp_config());
    std::atomic<bool> started{false};
    std::int64_t first_result = 0;
    std::thread a([&] {
        started = true;
        first_result = c.query("SELECT SLEEP(1), 77").row(0)[1].as<std::int64_t>();
    });
    while (!started) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    try {
        c.query("SELECT 1");
        ADD_FAILURE() << "a second operation ran concurrently";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::operation_in_progress));
        EXPECT_EQ(e.kind(), error_kind::client);
    }
    std::error_code ec;
    c.ping(ec);
    EXPECT_EQ(ec, make_error_code(errc::operation_in_progress));
    a.join();
    EXPECT_EQ(first_result, 77) << "the first operation completed normally";
    EXPECT_EQ(c.query("SELECT 5").row(0)[0].as<int>(), 5);
}

TEST(Query, ReadTimeoutFailsCleanly) {
    config cfg = tcp_config();
    cfg.read_timeout = std::chrono::milliseconds(300);
    connection c(cfg);
    auto t0 = std::chrono::steady_clock::now();
    try {
        c.query("SELECT SLEEP(5)");
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::network);
        EXPECT_EQ(e.code(), make_error_code(errc::timeout));
        EXPECT_FALSE(e.connection_usable());
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_FALSE(c.is_open());
}

namespace {
// A user hook: counts its waits and serves them with poll(2).
class counting_hook : public wait_hook {
public:
    int reads = 0, writes = 0;
    std::error_code wait(int fd, unsigned events, clock::time_point deadline) override {
        (events & wait_for::read ? reads : writes)++;
        pollfd p{fd, static_cast<short>((events & wait_for::read ? POLLIN : 0) | (events & wait_for::write ? POLLOUT : 0)), 0};
        int ms = deadline == clock::time_point::max()
                     ? -1
                     : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count());
        int r = ::poll(&p, 1, ms < 0 && deadline != clock::time_point::max() ? 0 : ms);
        if (r == 0) return errc::timeout;
        return {};
    }
};
}  // namespace

TEST(Query, EveryWaitGoesThroughTheInstalledHook) {
    counting_hook hook;
    scoped_wait_hook scope(&hook);
    config cfg = tcp_config();
    cfg.ssl = ssl_mode::required;
    connection c(cfg);
    EXPECT_TRUE(c.tls_active());
    // Whether connect had to wait depends on timing; a 200 ms query always does.
    int before = hook.reads;
    EXPECT_EQ(c.query("SELECT SLEEP(0.2), 9").row(0)[1].as<int>(), 9);
    EXPECT_GT(hook.reads, before) << "the query waited through the hook";
}

TEST(Query, HookTimeoutFailsTheOperation) {
    counting_hook hook;
    scoped_wait_hook scope(&hook);
    config cfg = tcp_config();
    cfg.read_timeout = std::chrono::milliseconds(200);
    connection c(cfg);
    try {
        c.query("SELECT SLEEP(3)");
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::timeout));
    }
}

TEST(Query, LoopingOverTheRowsOfATemporaryResultIsSafe) {
    connection c(tcp_config());
    std::int64_t sum = 0;
    for (auto row : c.query("SELECT seq FROM seq_1_to_100").rows()) sum += row[0].as<std::int64_t>();
    EXPECT_EQ(sum, 5050);
}

TEST(SessionState, SetNamesAsSqlIsTrackedAndEscapingFollows) {
    connection c(tcp_config());
    EXPECT_EQ(c.character_set(), "utf8mb4");
    EXPECT_EQ(c.query("SELECT ?", "a'b").row(0)[0].get_text(), "a'b");
    c.query("SET NAMES big5");
    EXPECT_EQ(c.character_set(), "big5");
    EXPECT_EQ(c.escaping_rules().mb, multibyte::big5);
    try {  // a lead byte before a quote: refused, never escaped byte by byte
        c.query("SELECT ?", "\xbf' OR 1=1 -- ");
        ADD_FAILURE() << "interpolated a lone big5 lead byte";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::bad_text));
    }
    // 0xA55C (a big5 character whose trailing byte is a backslash) and a quote after it.
    EXPECT_EQ(c.query("SELECT HEX(?)", "\xa5\x5c' OR 1=1 -- ").row(0)[0].get_text(), "A55C27204F5220313D31202D2D20");
    EXPECT_EQ(c.execute("SELECT ?", "bound, not interpolated").row(0)[0].get_text(), "bound, not interpolated");
    c.query("SET NAMES utf8mb4");
    EXPECT_EQ(c.escaping_rules().mb, multibyte::none);
    EXPECT_EQ(c.query("SELECT ?", "ok").row(0)[0].get_text(), "ok");
    c.query("SET NAMES gbk");
    c.reset_connection();  // back to the handshake's character set
    EXPECT_EQ(c.character_set(), "utf8mb4");
    EXPECT_TRUE(c.charset_tracked());
    EXPECT_FALSE(c.escaping_rules().charset_unknown);

    std::string db = c.current_schema();
    c.query("USE information_schema");
    EXPECT_EQ(c.current_schema(), "information_schema");
    c.select_db(db);
    EXPECT_EQ(c.current_schema(), db);
}

// Multibyte character sets: every string goes in and comes back exactly, the classic
// trailing-byte characters included, whichever way it is sent.
TEST(SessionState, MultibyteCharsetsRoundTripTrailingBackslashes) {
    connection c(tcp_config());
    struct probe {
        const char* charset;
        std::string text;  // in that character set: characters ending in 0x5C, quotes, backslashes
    };
    for (const probe& p : {probe{"gbk", "\xbf\x5c' OR 1=1 -- \\\xd5\x5c"}, probe{"big5", "\xa5\x5c'\\"},
                           probe{"sjis", "\x95\x5c'\\\xb1"}, probe{"cp932", "\x83\x5c\"'"},
                           probe{"gb2312", "\xb0\xa1'\\"}}) {  // (MariaDB has no gb18030)
        c.set_character_set(p.charset);
        ASSERT_EQ(c.character_set(), p.charset);
        auto r = c.query("SELECT ?, HEX(?)", p.text, p.text);
        EXPECT_EQ(r.row(0)[0].get_text(), p.text) << p.charset;
        std::string hex;
        for (unsigned char ch : p.text) {
            static constexpr char digits[] = "0123456789ABCDEF";
            hex += digits[ch >> 4];
            hex += digits[ch & 15];
        }
        EXPECT_EQ(r.row(0)[1].get_text(), hex) << p.charset;
    }
}

// The review's injection: with character_set_client left out of what the server reports,
// a SET NAMES gbk went unnoticed and text was escaped as UTF-8 while the server read GBK.
TEST(SessionState, ACharsetTheServerDoesNotReportIsNeverGuessed) {
    connection c(tcp_config());
    c.query("CREATE TEMPORARY TABLE u (name VARCHAR(20)) CHARACTER SET utf8mb4");
    c.query("INSERT INTO u VALUES ('alice'), ('bob')");
    const std::string attack = "\xd6\xd0' OR 1=1 -- ";  // GBK for U+4E2D, a quote, a tautology
    c.query("SET SESSION session_track_system_variables=''");
    EXPECT_FALSE(c.charset_tracked());
    c.query("SET NAMES gbk");
    EXPECT_TRUE(c.escaping_rules().charset_unknown);
    try {
        c.query("SELECT COUNT(*) FROM u WHERE name = ?", attack);
        ADD_FAILURE() << "interpolated with the character set unknown";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::charset_unknown));
    }
    // Set through the driver: known whatever the server reports, and escaped for it.
    c.set_character_set("gbk");
    EXPECT_EQ(c.query("SELECT COUNT(*) FROM u WHERE name = ?", attack).row(0)[0].as<std::int64_t>(), 0);
    // The next statement may change it again where nothing reports it.
    c.query("SELECT 1");
    EXPECT_TRUE(c.escaping_rules().charset_unknown);
    c.reset_connection();  // the global list again, with character_set_client added
    EXPECT_TRUE(c.charset_tracked());
    c.query("SET NAMES gbk");
    EXPECT_EQ(c.character_set(), "gbk");
    EXPECT_EQ(c.query("SELECT ?", attack).row(0)[0].get_text(), attack);
}


TEST(Api, ARowOfATemporaryResultOwnsItsBytes) {
    connection c(tcp_config());
    auto r = c.query("SELECT 'kept', 2").row(0);  // an owned_row: the resultset came with it
    c.query("SELECT REPEAT('x', 100000)");        // reuses and overwrites buffers
    EXPECT_EQ(r[0].as<std::string_view>(), "kept");
    EXPECT_EQ(r[1].as<int>(), 2);
    EXPECT_EQ(r.columns().size(), 2u);
    EXPECT_THROW((void)c.query("SELECT 1").row(5), error) << "bounds-checked";
}

TEST(Api, ARowStreamFollowsItsConnectionAndFailsCleanlyOnceItsResultIsGone) {
    auto c = std::make_unique<connection>(tcp_config());
    row_stream s = c->stream("SELECT seq FROM seq_1_to_5");
    connection moved = std::move(*c);  // the stream follows the connection
    c.reset();
    row_view r;
    ASSERT_TRUE(s.next(r));
    EXPECT_EQ(r[0].as<int>(), 1);
    s.discard();
    // Another stream on the connection: the first one's result is gone.
    row_stream t = moved.stream("SELECT seq FROM seq_1_to_3");
    try {
        s.next(r);
        FAIL() << "a superseded stream read another stream's rows";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::stale_handle));
    }
    ASSERT_TRUE(t.next(r));
    EXPECT_EQ(r[0].as<int>(), 1);
    {
        connection gone = std::move(moved);  // destroyed with t unfinished
    }
    try {
        t.next(r);
        FAIL() << "a stream outlived its connection";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::stale_handle));
    }
}

TEST(Api, CloseFromAnotherThreadInterruptsTheRunningOperation) {
    connection c(tcp_config());
    std::error_code seen;
    auto t0 = std::chrono::steady_clock::now();
    std::thread worker([&] {
        try {
            c.query("SELECT SLEEP(5)");
        } catch (const error& e) {
            seen = e.code();
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    c.close();
    worker.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_EQ(seen, make_error_code(errc::connection_closed)) << seen.message();
    EXPECT_FALSE(c.is_open());
    c.connect(tcp_config());  // and it can be used again
    EXPECT_EQ(c.query("SELECT 3").row(0)[0].as<int>(), 3);
}

TEST(Api, CloseFromAnotherThreadInterruptsAnOperationWaitingToSend) {
    // Its 32 MB query waits to be written (the peer stopped reading) when another thread
    // closes the connection: it fails at once, not at its write timeout (6 s here).
    relay deaf(relay::mode::deaf);
    config cfg = deaf.through();
    cfg.write_timeout = std::chrono::seconds(6);
    connection c(cfg);
    std::error_code seen;
    std::thread worker([&] {
        try {
            c.query("SELECT LENGTH('" + std::string(32'000'000, 'x') + "')");
        } catch (const error& e) {
            seen = e.code();
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto t0 = std::chrono::steady_clock::now();
    c.close();
    worker.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
    EXPECT_EQ(seen, make_error_code(errc::connection_closed)) << seen.message();
    EXPECT_FALSE(c.is_open());
}

TEST(Query, FoundRowsMakesAnUpdateReportTheRowsItMatched) {
    const std::string t = unique_table("found_rows");
    connection setup(tcp_config());
    setup.query("CREATE TABLE " + t + " (id INT PRIMARY KEY, v INT)");
    setup.query("INSERT INTO " + t + " VALUES (1, 5), (2, 5)");
    const std::string same = "UPDATE " + t + " SET v = 5";  // matches 2 rows, changes none
    EXPECT_EQ(setup.query(same).affected_rows(), 0u);
    config cfg = tcp_config();
    cfg.found_rows = true;
    connection c(cfg);
    EXPECT_EQ(c.query(same).affected_rows(), 2u);
    setup.query("DROP TABLE " + t);
}
