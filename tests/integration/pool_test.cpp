// The pool for every model against the test server: threads (also under ThreadSanitizer
// in scripts/test), fibers on a hub, and Asio coroutines (async_pool): exhaustion and
// timeouts, waiters in order, cancellation of a waiting acquire, broken connections and
// transactions given back, the reset on return, idle pings and lifetimes.
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "ambisql/async_pool.hpp"
#include "ambisql/hub.hpp"
#include "ambisql/pool.hpp"
#include "ambisql/retry.hpp"
#include "common.hpp"

namespace ambisql::test {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

pool_config small_pool(std::size_t max) {
    pool_config pc;
    pc.connection = unix_config();
    pc.limits.max_size = max;
    pc.limits.acquire_timeout = 5000ms;
    return pc;
}

std::int64_t scalar(connection& c, const std::string& sql) { return c.query(sql).row(0)[0].as<std::int64_t>(); }

// Acquires a connection, gives it back, and says which it was.
std::uint32_t use_once(pool& p) { return p.acquire()->connection_id(); }

double seconds_since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

TEST(Pool, ReusesConnectionsAndResetsTheSessionOnReturn) {
    auto pc = small_pool(2);
    pc.init_statements = {"SET @pool_init = 7"};
    pool p(pc);
    std::uint32_t id = 0;
    {
        auto c = p.acquire();
        id = c->connection_id();
        EXPECT_EQ(scalar(*c, "SELECT @pool_init"), 7);
        c->query("SET @leftover = 1");
        c->query("CREATE TEMPORARY TABLE pool_tmp (x INT)");
    }
    auto c = p.acquire();
    EXPECT_EQ(c->connection_id(), id) << "the idle connection is reused";
    EXPECT_TRUE(c->query("SELECT @leftover").row(0)[0].is_null()) << "the session was reset";
    EXPECT_EQ(scalar(*c, "SELECT @pool_init"), 7) << "and the init statements ran again";
    EXPECT_THROW(c->query("SELECT * FROM pool_tmp"), error);
    auto st = p.stats();
    EXPECT_EQ(st.total, 1u);
    EXPECT_EQ(st.created, 1u);
}

// The pool's own statements (session_track_state_change, the reset pipeline) leave the
// character set tracked: text is interpolated on a fresh and on a reset connection.
TEST(Pool, PooledConnectionsKeepTheirCharacterSetKnown) {
    pool p(small_pool(1));
    for (int i = 0; i < 2; ++i) {
        auto c = p.acquire();
        EXPECT_TRUE(c->charset_tracked());
        EXPECT_EQ(c->query("SELECT ?", "it's").row(0)[0].get_text(), "it's");
        c->query("SET NAMES gbk");
        EXPECT_EQ(c->query("SELECT ?", "\xd6\xd0'").row(0)[0].get_text(), "\xd6\xd0'");
    }
}

TEST(Pool, OnlyAConnectionWhoseSessionChangedIsReset) {
    pool p(small_pool(1));
    for (int i = 0; i < 3; ++i) {
        auto c = p.acquire();
        EXPECT_EQ(scalar(*c, "SELECT 1"), 1);
    }
    EXPECT_EQ(p.stats().resets, 0u) << "plain queries leave the session as it was: no round trip on return";
    for (const char* change : {"SET @v = 1", "SET SESSION sql_mode = 'ANSI'", "CREATE TEMPORARY TABLE pool_t (x INT)",
                               "USE mysql"}) {
        const auto before = p.stats().resets;
        {
            auto c = p.acquire();
            c->query(change);
        }
        EXPECT_EQ(p.stats().resets, before + 1) << change;
        auto c = p.acquire();
        EXPECT_TRUE(c->query("SELECT @v").row(0)[0].is_null());
        EXPECT_NE(c->query("SELECT @@SESSION.sql_mode").row(0)[0].get_text(), "ANSI");
        EXPECT_EQ(c->query("SELECT DATABASE()").row(0)[0].get_text(), "ambisql_test");
    }
}

TEST(Pool, ATransactionLeftOpenIsRolledBackOrTheConnectionDiscarded) {
    std::string t = unique_table("pooltx");
    {
        connection admin(unix_config());
        admin.query("CREATE TABLE " + t + " (id INT PRIMARY KEY) ENGINE=InnoDB");
    }
    for (bool rollback : {true, false}) {
        auto pc = small_pool(1);
        pc.rollback_on_return = rollback;
        pc.reset_on_return = false;
        pool p(pc);
        std::uint32_t id = 0;
        {
            auto c = p.acquire();
            id = c->connection_id();
            c->query("BEGIN");
            c->query("INSERT INTO " + t + " VALUES (1)");
        }
        auto c = p.acquire();
        EXPECT_EQ(c->connection_id() == id, rollback);
        EXPECT_EQ(scalar(*c, "SELECT COUNT(*) FROM " + t), 0) << "nothing of the open transaction stayed";
        EXPECT_EQ(c->server_status() & server_status::in_trans, 0);
    }
    connection admin(unix_config());
    admin.query("DROP TABLE " + t);
}

TEST(Pool, ABrokenConnectionGivenBackIsReplaced) {
    pool p(small_pool(1));
    std::uint32_t id = 0;
    {
        auto c = p.acquire();
        id = c->connection_id();
        connection admin(unix_config());
        admin.query("KILL " + std::to_string(id));
        EXPECT_THROW(c->query("SELECT 1"), error);
    }
    EXPECT_EQ(p.stats().total, 0u);
    auto c = p.acquire();
    EXPECT_NE(c->connection_id(), id);
    EXPECT_EQ(scalar(*c, "SELECT 1"), 1);
}

TEST(Pool, AConnectionThatDiedWhileIdleIsPingedAndReplaced) {
    auto pc = small_pool(1);
    pc.limits.ping_after_idle = 0ms;
    pool p(pc);
    const std::uint32_t id = use_once(p);
    {
        connection admin(unix_config());
        admin.query("KILL " + std::to_string(id));
    }
    std::this_thread::sleep_for(50ms);
    auto c = p.acquire();
    EXPECT_NE(c->connection_id(), id);
    EXPECT_EQ(scalar(*c, "SELECT 2"), 2);
    EXPECT_EQ(p.stats().discarded, 1u);
}

TEST(Pool, IdleTimeoutAndLifetimeRetireConnections) {
    auto pc = small_pool(1);
    pc.limits.idle_timeout = 100ms;
    pool p(pc);
    std::uint32_t id = use_once(p);
    std::this_thread::sleep_for(150ms);
    {
        auto c = p.acquire();
        EXPECT_NE(c->connection_id(), id) << "idle too long: closed, a new one made";
        id = c->connection_id();
    }
    pc = small_pool(1);
    pc.limits.max_lifetime = 100ms;
    pool q(pc);
    {
        auto c = q.acquire();
        id = c->connection_id();
        std::this_thread::sleep_for(150ms);
    }
    auto c = q.acquire();
    EXPECT_NE(c->connection_id(), id) << "past its lifetime: not taken back";
}

TEST(Pool, MinSizeConnectionsOutliveTheIdleTimeout) {
    auto pc = small_pool(4);
    pc.limits.min_size = 2;
    pc.limits.idle_timeout = 100ms;
    pool p(pc);
    p.prefill();
    EXPECT_EQ(p.stats().total, 2u);
    std::this_thread::sleep_for(150ms);
    {
        auto a = p.acquire();
        auto b = p.acquire();
        EXPECT_EQ(p.stats().created, 2u) << "the two idle ones were kept";
        auto c = p.acquire();  // a third, above the minimum
    }
    std::this_thread::sleep_for(150ms);
    auto a = p.acquire();  // the idle one above the minimum is closed now
    EXPECT_EQ(p.stats().total, 2u);
}

TEST(Pool, ExhaustionTimesOutAndWaitersAreServedInOrder) {
    pool p(small_pool(1));
    auto held = p.acquire();
    auto t0 = clock::now();
    try {
        (void)p.acquire(200ms);
        ADD_FAILURE() << "an acquire beyond the maximum succeeded";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::timeout));
    }
    EXPECT_GE(seconds_since(t0), 0.19);
    EXPECT_LT(seconds_since(t0), 2.0);
    EXPECT_EQ(p.stats().timeouts, 1u);

    // Three threads queue up in a known order; each gets the connection in turn.
    std::mutex m;
    std::vector<int> order;
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
        threads.emplace_back([&, i] {
            auto c = p.acquire();
            std::lock_guard lk(m);
            order.push_back(i);
        });
        while (p.stats().waiting != static_cast<std::size_t>(i + 1)) std::this_thread::sleep_for(1ms);
    }
    held.release();
    for (auto& t : threads) t.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST(Pool, ManyThreadsShareAFewConnections) {
    pool p(small_pool(4));
    std::atomic<int> done{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) {
                auto c = p.acquire();
                if (scalar(*c, "SELECT " + std::to_string(t * 100 + i)) == t * 100 + i) ++done;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(done.load(), 16 * 25);
    auto st = p.stats();
    EXPECT_LE(st.total, 4u);
    EXPECT_EQ(st.waiting, 0u);
}

TEST(Pool, ConnectionsDroppedByTheServerAreReplacedThroughPings) {
    // The pool's view after the server dropped its connections (as a restart does; see
    // the restart test for a real one): each idle one is pinged, fails, and is replaced.
    auto pc = small_pool(3);
    pc.limits.ping_after_idle = 0ms;
    pool p(pc);
    std::vector<std::uint32_t> ids;
    {
        std::vector<pooled_connection> held;
        for (int i = 0; i < 3; ++i) held.push_back(p.acquire());
        for (auto& c : held) ids.push_back(c->connection_id());
    }
    EXPECT_EQ(p.stats().idle, 3u);
    {
        connection admin(unix_config());
        for (auto id : ids) admin.query("KILL " + std::to_string(id));
    }
    std::this_thread::sleep_for(50ms);
    auto c = p.acquire();
    EXPECT_EQ(scalar(*c, "SELECT 3"), 3);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), c->connection_id()), 0);
}

TEST(Pool, FibersWaitWithoutBlockingTheLoop) {
    // 20 fibers, 2 connections, each holds one for SLEEP(0.1): ten rounds of 0.1 s. The
    // loop stays free meanwhile: a timer fires on time.
    asio::io_context io;
    hub h(io);
    pool p(small_pool(2));
    std::atomic<int> ok{0};
    for (int i = 0; i < 20; ++i) {
        h.spawn([&, i] {
            auto c = p.acquire();
            if (scalar(*c, "SELECT SLEEP(0.1) + " + std::to_string(i)) == i) ++ok;
        });
    }
    asio::steady_timer tick(io, 50ms);
    clock::time_point ticked{};
    tick.async_wait([&](boost::system::error_code) { ticked = clock::now(); });
    auto t0 = clock::now();
    io.run();
    EXPECT_EQ(ok.load(), 20);
    EXPECT_LT(std::chrono::duration<double>(ticked - t0).count(), 0.09) << "the loop was blocked";
    EXPECT_GE(seconds_since(t0), 0.95);
    EXPECT_LT(seconds_since(t0), 3.0);
    EXPECT_LE(p.stats().total, 2u);
}

TEST(AsyncPool, CoroutinesShareConnectionsAndGiveThemBack) {
    asio::io_context io;
    async_pool p(io.get_executor(), small_pool(3));
    int ok = 0;
    for (int i = 0; i < 12; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                auto c = co_await p.async_acquire(asio::use_awaitable);
                co_await c->async_query("SELECT SLEEP(0.1), " + std::to_string(i), asio::use_awaitable);
                if (c->result().row(0)[1].as<std::int64_t>() == i) ++ok;
            },
            asio::detached);
    }
    auto t0 = clock::now();
    io.run();
    EXPECT_EQ(ok, 12);
    EXPECT_GE(seconds_since(t0), 0.35) << "four rounds on three connections";
    EXPECT_LT(seconds_since(t0), 3.0);
    auto st = p.stats();
    EXPECT_EQ(st.total, 3u);
    EXPECT_EQ(st.idle, 3u);
    EXPECT_EQ(st.resets, 0u) << "plain queries: given back without a reset";
}

TEST(AsyncPool, AnIoContextRunByFourThreadsSharesThePool) {
    // Grants come from whichever thread gives a connection back: the pool's lock and the
    // waiters' strands keep that race-free (scripts/test runs this under TSan).
    asio::io_context io;
    async_pool p(io.get_executor(), small_pool(3));
    std::atomic<int> ok{0};
    for (int i = 0; i < 32; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                for (int k = 0; k < 5; ++k) {
                    auto c = co_await p.async_acquire(asio::use_awaitable);
                    co_await c->async_query("SELECT " + std::to_string(i * 10 + k), asio::use_awaitable);
                    if (c->result().row(0)[0].as<std::int64_t>() == i * 10 + k) ++ok;
                }
            },
            asio::detached);
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&] { io.run(); });
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 32 * 5);
    EXPECT_LE(p.stats().total, 3u);
    EXPECT_EQ(p.stats().waiting, 0u);
}

TEST(AsyncPool, AWaitingAcquireCanBeCancelledAndTimesOut) {
    asio::io_context io;
    auto pc = small_pool(1);
    pc.limits.acquire_timeout = 300ms;
    async_pool p(io.get_executor(), pc);
    asio::cancellation_signal sig;
    boost::system::error_code cancelled_ec, timeout_ec, later_ec;
    double cancelled_at = 0, timeout_at = 0;
    auto t0 = clock::now();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto held = co_await p.async_acquire(asio::use_awaitable);
            // a waiter cancelled after 50 ms
            p.async_acquire(asio::bind_cancellation_slot(sig.slot(), [&](boost::system::error_code ec, pooled_async_connection) {
                cancelled_ec = ec;
                cancelled_at = seconds_since(t0);
            }));
            asio::steady_timer t(io, 50ms);
            co_await t.async_wait(asio::use_awaitable);
            sig.emit(asio::cancellation_type::terminal);
            // a waiter that times out
            try {
                (void)co_await p.async_acquire(asio::use_awaitable);
            } catch (const boost::system::system_error& e) {
                timeout_ec = e.code();
                timeout_at = seconds_since(t0);
            }
            held.release();
            auto again = co_await p.async_acquire(asio::use_awaitable);
            co_await again->async_query("SELECT 1", asio::use_awaitable);
            later_ec = {};
        },
        asio::detached);
    io.run();
    EXPECT_EQ(cancelled_ec, asio::error::operation_aborted);
    EXPECT_LT(cancelled_at, 0.2);
    EXPECT_EQ(timeout_ec, boost::system::error_code(make_error_code(errc::timeout)));
    EXPECT_GE(timeout_at, 0.3);
    EXPECT_LT(timeout_at, 2.0);
    EXPECT_EQ(p.stats().waiting, 0u);
    EXPECT_EQ(p.stats().total, 1u);
}

TEST(AsyncPool, ABrokenConnectionIsDiscardedAndATransactionRolledBack) {
    asio::io_context io;
    async_pool p(io.get_executor(), small_pool(1));
    std::uint32_t first = 0, second = 0, third = 0;
    std::uint16_t status = 0xFFFF;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            {
                auto c = co_await p.async_acquire(asio::use_awaitable);
                first = c->connection_id();
                co_await c->async_query("BEGIN", asio::use_awaitable);
            }
            {
                auto c = co_await p.async_acquire(asio::use_awaitable);  // after the reset's round trip
                second = c->connection_id();
                status = c->server_status();
                connection admin(unix_config());
                admin.query("KILL " + std::to_string(second));
                boost::system::error_code ec;
                co_await c->async_query("SELECT 1", asio::redirect_error(asio::use_awaitable, ec));
            }
            auto c = co_await p.async_acquire(asio::use_awaitable);
            third = c->connection_id();
        },
        asio::detached);
    io.run();
    EXPECT_EQ(first, second) << "given back after the reset";
    EXPECT_EQ(status & server_status::in_trans, 0);
    EXPECT_NE(third, second) << "the killed one was replaced";
}

}  // namespace
}  // namespace ambisql::test

namespace ambisql::test {
namespace {

struct retry_table {
    std::string name = unique_table("retry");
    retry_table() {
        connection admin(unix_config());
        admin.query("CREATE TABLE " + name + " (id INT PRIMARY KEY, v INT) ENGINE=InnoDB");
        admin.query("INSERT INTO " + name + " VALUES (1, 0), (2, 0)");
    }
    ~retry_table() {
        connection admin(unix_config());
        admin.query("DROP TABLE " + name);
    }
    std::int64_t count(const std::string& where = "1") {
        connection admin(unix_config());
        return admin.query("SELECT COUNT(*) FROM " + name + " WHERE " + where).row(0)[0].as<std::int64_t>();
    }
};

TEST(Transact, ADeadlockReRunsTheWholeFunctionAndBothSucceed) {
    retry_table t;
    pool p(small_pool(4));
    std::atomic<int> attempts{0};
    std::atomic<int> arrived{0};
    auto work = [&](int first, int second, int id) {
        return transact(p, [&](connection& c) {
            ++attempts;
            c.query("UPDATE " + t.name + " SET v = v + 1 WHERE id = " + std::to_string(first));
            if (++arrived <= 2)  // the first attempts meet, so that they deadlock
                while (arrived.load() < 2) std::this_thread::sleep_for(1ms);
            c.query("UPDATE " + t.name + " SET v = v + 1 WHERE id = " + std::to_string(second));
            c.query("INSERT INTO " + t.name + " VALUES (" + std::to_string(id) + ", 0)");
            return id;
        });
    };
    int a = 0, b = 0;
    std::thread ta([&] { a = work(1, 2, 10); });
    std::thread tb([&] { b = work(2, 1, 11); });
    ta.join();
    tb.join();
    EXPECT_EQ(a, 10);
    EXPECT_EQ(b, 11);
    EXPECT_EQ(attempts.load(), 3) << "one of the two was re-run once";
    EXPECT_EQ(t.count("id IN (10, 11)"), 2);
    connection admin(unix_config());
    EXPECT_EQ(admin.query("SELECT CAST(SUM(v) AS SIGNED) FROM " + t.name).row(0)[0].as<std::int64_t>(), 4)
        << "the deadlock's loser left nothing behind";
}

TEST(Transact, ALostConnectionBeforeCommitIsRetriedOnANewConnection) {
    retry_table t;
    pool p(small_pool(2));
    int attempts = 0;
    transact(p, [&](connection& c) {
        ++attempts;
        c.query("INSERT INTO " + t.name + " VALUES (20, 0)");
        if (attempts == 1) {
            connection admin(unix_config());
            admin.query("KILL " + std::to_string(c.connection_id()));
        }
        c.query("UPDATE " + t.name + " SET v = 5 WHERE id = 20");
    });
    EXPECT_EQ(attempts, 2);
    EXPECT_EQ(t.count("id = 20 AND v = 5"), 1) << "applied exactly once";
}

TEST(Transact, ACommitWhoseOutcomeIsUnknownIsNotRetriedUnlessIdempotent) {
    retry_table t;
    pool p(small_pool(2));
    for (bool idempotent : {false, true}) {
        int attempts = 0;
        retry_policy pol;
        pol.idempotent = idempotent;
        auto fn = [&](connection& c) {
            ++attempts;
            c.query("UPDATE " + t.name + " SET v = v + 1 WHERE id = 1");
            if (attempts == 1) {  // the connection dies just before COMMIT goes out
                connection admin(unix_config());
                admin.query("KILL " + std::to_string(c.connection_id()));
            }
        };
        if (idempotent) {
            transact(p, fn, pol);
            EXPECT_EQ(attempts, 2);
        } else {
            EXPECT_THROW(transact(p, fn, pol), commit_outcome_unknown);
            EXPECT_EQ(attempts, 1);
        }
    }
}

TEST(Transact, FatalErrorsAreNotRetried) {
    retry_table t;
    pool p(small_pool(2));
    int attempts = 0;
    try {
        transact(p, [&](connection& c) {
            ++attempts;
            c.query("INSERT INTO " + t.name + " VALUES (1, 0)");  // duplicate key
        });
        ADD_FAILURE() << "a duplicate key was retried into success";
    } catch (const error& e) {
        EXPECT_EQ(e.server_code(), 1062);
    }
    EXPECT_EQ(attempts, 1);
}

}  // namespace
}  // namespace ambisql::test

namespace ambisql::test {
namespace {

config with_a_dead_host_first() {
    config c = tcp_config();
    // port 1 on loopback: refused at once
    c.hosts = {{"127.0.0.1", 1}, {c.host, c.port}};
    c.hosts_mode = host_mode::sequential;
    return c;
}

TEST(Hosts, EveryModelFailsOverToTheNextHostAndNamesWhatItTried) {
    config c = with_a_dead_host_first();
    connection blocking(c);
    EXPECT_EQ(scalar(blocking, "SELECT 1"), 1);

    asio::io_context io;
    async_connection a(io.get_executor(), c);
    boost::system::error_code aec = asio::error::would_block;
    a.async_connect([&](boost::system::error_code ec) { aec = ec; });
    io.run();
    EXPECT_FALSE(aec) << a.error().message;
    EXPECT_TRUE(a.is_open());

    pool_config pc;
    pc.connection = c;
    pool p(pc);
    EXPECT_EQ(scalar(*p.acquire(), "SELECT 2"), 2);

    config none = c;
    none.hosts = {{"127.0.0.1", 1}, {"127.0.0.1", 2}};
    try {
        connection fails(none);
        ADD_FAILURE() << "connected with no live host";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::connect_failed));
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:2"), std::string::npos) << e.what();
    }
    nb_connection nb(none);
    nb.start_connect();
    while (!nb.poll().done()) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(nb.error().code, make_error_code(errc::connect_failed));
}

TEST(Hosts, GaleraCheckOnAServerWithoutGaleraRefusesIt) {
    config c = unix_config();
    c.galera_check = true;
    try {
        connection conn(c);
        ADD_FAILURE() << "a server without wsrep passed the Galera check";
    } catch (const error& e) {
        // (it said "the Galera node is not synced", which sends one looking at the cluster)
        EXPECT_NE(std::string(e.what()).find("not a Galera node"), std::string::npos) << e.what();
    }
    nb_connection nb(c);  // the poll driver says the same
    nb.start_connect();
    while (!nb.poll().done()) std::this_thread::sleep_for(1ms);
    EXPECT_NE(nb.error().message.find("not a Galera node"), std::string::npos) << nb.error().message;
}

}  // namespace
}  // namespace ambisql::test
