// Tests that change the shared test server for everyone: the server process stopped and
// restarted under running async queries, a global variable changed. Run alone (RUN_SERIAL).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "ambisql/async_connection.hpp"
#include "ambisql/pool.hpp"
#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;
namespace asio = boost::asio;

TEST(Restart, ServerRestartedMidQueryGivesCleanErrorsThenNewConnectionsWork) {
    const char* script = std::getenv("AMBISQL_SERVER_SCRIPT");
    if (!script) GTEST_SKIP() << "AMBISQL_SERVER_SCRIPT is not set (an external server is in use)";
    asio::io_context io;
    std::vector<boost::system::error_code> ecs(3);
    std::vector<bool> done(3, false);
    std::vector<std::unique_ptr<async_connection>> conns;
    for (int i = 0; i < 3; ++i) {
        config cfg = i == 0 ? unix_config() : tcp_config();
        if (i == 2) cfg.ssl = ssl_mode::required;
        conns.push_back(std::make_unique<async_connection>(io.get_executor(), cfg));
    }
    for (int i = 0; i < 3; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                co_await conns[i]->async_connect(asio::use_awaitable);
                conns[i]->async_query("SELECT SLEEP(30)", [&, i](boost::system::error_code ec) {
                    ecs[i] = ec;
                    done[i] = true;
                });
            },
            asio::detached);
    }
    std::thread restarter([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        std::string cmd = std::string(script) + " restart >/dev/null 2>&1";
        EXPECT_EQ(std::system(cmd.c_str()), 0);
    });
    auto t0 = std::chrono::steady_clock::now();
    io.run_for(std::chrono::seconds(40));
    restarter.join();
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(done[i]) << "connection " << i << " hung";
        EXPECT_TRUE(ecs[i]) << "connection " << i << " did not report the lost server";
        EXPECT_EQ(conns[i]->error().kind, error_kind::network) << conns[i]->error().message;
        EXPECT_FALSE(conns[i]->is_open());
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
    // The restarted server takes new connections.
    connection fresh(tcp_config());
    EXPECT_EQ(fresh.query("SELECT 1").row(0)[0].as<int>(), 1);
}

TEST(Restart, APoolSurvivesAServerRestart) {
    // Idle pooled connections die with the server; after the restart each is pinged,
    // found dead and replaced, and a connection in use at the time fails cleanly and is
    // discarded when given back.
    const char* script = std::getenv("AMBISQL_SERVER_SCRIPT");
    if (!script) GTEST_SKIP() << "AMBISQL_SERVER_SCRIPT is not set (an external server is in use)";
    pool_config pc;
    pc.connection = unix_config();
    pc.limits.max_size = 3;
    pc.limits.ping_after_idle = std::chrono::milliseconds(0);
    pool p(pc);
    p.prefill(3);
    {
        auto in_use = p.acquire();
        std::string cmd = std::string(script) + " restart >/dev/null 2>&1";
        ASSERT_EQ(std::system(cmd.c_str()), 0);
        EXPECT_THROW(in_use->query("SELECT 1"), error);
    }
    for (int i = 0; i < 5; ++i) {
        auto c = p.acquire();
        EXPECT_EQ(c->query("SELECT 7").row(0)[0].as<int>(), 7);
    }
    EXPECT_LE(p.stats().total, 3u);
}

// A DBA's global list without character_set_client: each connection adds it for itself.
// With the global list empty, MariaDB's tracker stays off for the whole session whatever
// the session sets: the driver sees its change go unreported and never guesses.
TEST(GlobalSettings, TheConnectionTracksTheCharsetWhateverTheGlobalListSays) {
    connection admin(tcp_config());
    const std::string before(admin.query("SELECT @@global.session_track_system_variables").row(0)[0].get_text());
    struct restore {
        connection& a;
        const std::string& v;
        ~restore() { a.execute("SET GLOBAL session_track_system_variables = ?", v); }  // (bound: no escaping)
    } r{admin, before};
    const std::string attack = "\xd6\xd0' OR 1=1 -- ";
    admin.query("SET GLOBAL session_track_system_variables = 'autocommit,time_zone'");
    {
        connection c(tcp_config());
        EXPECT_TRUE(c.charset_tracked());
        c.query("SET NAMES gbk");
        EXPECT_EQ(c.character_set(), "gbk");
        EXPECT_EQ(c.escaping_rules().mb, multibyte::gbk);
        EXPECT_EQ(c.query("SELECT ?", attack).row(0)[0].get_text(), attack);
        c.reset_connection();  // the global list again: character_set_client added again
        EXPECT_TRUE(c.charset_tracked());
    }
    admin.query("SET GLOBAL session_track_system_variables = ''");
    connection c(tcp_config());
    EXPECT_FALSE(c.charset_tracked());
    EXPECT_EQ(c.query("SELECT ?", "known until a statement runs").row(0)[0].get_text(), "known until a statement runs");
    c.query("SET NAMES gbk");
    EXPECT_TRUE(c.escaping_rules().charset_unknown);
    EXPECT_THROW(c.query("SELECT ?", attack), error);
    c.set_character_set("gbk");
    EXPECT_EQ(c.query("SELECT ?", attack).row(0)[0].get_text(), attack);
}
