// Connections that die: killed by the server, mid-query or idle.
#include <chrono>
#include <thread>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

TEST(Failure, KilledWhileIdleGivesANetworkErrorAndNoHang) {
    connection victim(tcp_config());
    connection admin(tcp_config());
    admin.query("KILL CONNECTION ?", victim.connection_id());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto t0 = std::chrono::steady_clock::now();
    try {
        victim.query("SELECT 1");
        FAIL() << "a killed connection answered";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::network) << e.what();
        EXPECT_FALSE(e.connection_usable());
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_FALSE(victim.is_open());
    try {
        victim.query("SELECT 1");
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::connection_broken));
    }
}

TEST(Failure, KilledMidQueryGivesANetworkError) {
    for (bool tls : {false, true}) {
        config cfg = tcp_config();
        if (tls) cfg.ssl = ssl_mode::required;
        connection victim(cfg);
        connection admin(tcp_config());
        auto id = victim.connection_id();
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            admin.query("KILL CONNECTION ?", id);
        });
        auto t0 = std::chrono::steady_clock::now();
        try {
            victim.query("SELECT SLEEP(10)");
            ADD_FAILURE() << "the query outlived its connection";
        } catch (const error& e) {
            EXPECT_EQ(e.kind(), error_kind::network) << e.what();
            EXPECT_FALSE(e.connection_usable());
        }
        killer.join();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    }
}

TEST(Failure, KillQueryKeepsTheConnectionUsable) {
    connection victim(tcp_config());
    connection admin(tcp_config());
    auto id = victim.connection_id();
    std::thread killer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        admin.query("KILL QUERY ?", id);
    });
    try {
        victim.query("SELECT SLEEP(10)");
        ADD_FAILURE() << "KILL QUERY did not interrupt the query";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::server) << e.what();
        EXPECT_EQ(e.server_code(), 1317) << e.what();  // ER_QUERY_INTERRUPTED
        EXPECT_TRUE(e.connection_usable());
    }
    killer.join();
    EXPECT_EQ(victim.query("SELECT 7").row(0)[0].as<int>(), 7);
}

TEST(Failure, KilledDuringAStreamedResult) {
    connection victim(unix_config());
    connection admin(tcp_config());
    auto st = victim.stream("SELECT seq, SLEEP(0.001) FROM seq_1_to_100000");
    row_view row;
    ASSERT_TRUE(st.next(row));
    admin.query("KILL CONNECTION ?", victim.connection_id());
    try {
        while (st.next(row)) {
        }
        FAIL() << "the stream ended normally after its connection was killed";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::network) << e.what();
    }
    EXPECT_FALSE(victim.is_open());
}
