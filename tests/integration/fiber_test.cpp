// Fibers: the blocking API, unchanged, suspends only its fiber.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "ambisql/hub.hpp"
#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;
namespace asio = boost::asio;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {
// Ordinary synchronous data-access code: it knows nothing about fibers.
std::int64_t sleepy_lookup(const config& cfg, std::int64_t key) {
    connection c(cfg);
    return c.query("SELECT SLEEP(0.5), ?", key).row(0)[1].as<std::int64_t>();
}
}  // namespace

TEST(Fiber, TwoHundredFibersSleepingHalfASecondFinishInUnderFiveSeconds) {
    asio::io_context io;
    hub h(io);
    std::vector<std::int64_t> got(200, -1);
    std::vector<fiber> fibers;
    for (std::size_t i = 0; i < got.size(); ++i)
        fibers.push_back(h.spawn([&, i] { got[i] = sleepy_lookup(unix_config(), static_cast<std::int64_t>(i)); }));
    auto t0 = steady::now();
    io.run();
    EXPECT_LT(steady::now() - t0, std::chrono::seconds(5)) << "serialized: 100 s";
    for (std::size_t i = 0; i < got.size(); ++i) {
        fibers[i].join();
        EXPECT_EQ(got[i], static_cast<std::int64_t>(i));
    }
}

TEST(Fiber, TheSameCodeWithoutAHubBlocksTheThread) {
    EXPECT_FALSE(this_fiber::active());
    auto t0 = steady::now();
    EXPECT_EQ(sleepy_lookup(tcp_config(), 7), 7);
    EXPECT_GE(steady::now() - t0, milliseconds(450));
}

TEST(Fiber, ACoroutineTimerKeepsFiringWhileFibersWaitOnTheDatabase) {
    asio::io_context io;
    hub h(io);
    int ticks = 0;
    steady::duration worst{0};
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer t(io);
            for (int i = 0; i < 20; ++i) {
                auto due = steady::now() + milliseconds(25);
                t.expires_at(due);
                co_await t.async_wait(asio::use_awaitable);
                worst = std::max(worst, steady::now() - due);
                ++ticks;
            }
        },
        asio::detached);
    for (int i = 0; i < 50; ++i) h.spawn([&, i] { sleepy_lookup(unix_config(), i); });
    io.run();
    EXPECT_EQ(ticks, 20);
    EXPECT_LT(worst, milliseconds(100)) << "the loop was never blocked by a database wait";
}

TEST(Fiber, TlsAndStreamingOnFibers) {
    asio::io_context io;
    hub h(io);
    std::uint64_t rows = 0;
    bool tls = false;
    auto f = h.spawn([&] {
        config cfg = tcp_config();
        cfg.ssl = ssl_mode::required;
        connection c(cfg);
        tls = c.tls_active();
        auto st = c.stream("SELECT seq FROM seq_1_to_20000");
        row_view r;
        while (st.next(r)) ++rows;
    });
    io.run();
    f.join();
    EXPECT_TRUE(tls);
    EXPECT_EQ(rows, 20000u);
}

TEST(Fiber, TwoFibersOnOneConnectionSecondGetsOperationInProgress) {
    asio::io_context io;
    hub h(io);
    connection* shared = nullptr;
    std::int64_t first = 0;
    std::error_code second;
    auto setup = h.spawn([&] {
        static connection c;
        c.connect(tcp_config());
        shared = &c;
        auto a = hub::current()->spawn([&] { first = shared->query("SELECT SLEEP(0.3), 5").row(0)[1].as<std::int64_t>(); });
        auto b = hub::current()->spawn([&] {
            this_fiber::sleep_for(milliseconds(100));
            shared->ping(second);
        });
        a.join();
        b.join();
        EXPECT_EQ(shared->query("SELECT 6").row(0)[0].as<int>(), 6) << "still usable";
    });
    io.run();
    setup.join();
    EXPECT_EQ(first, 5);
    EXPECT_EQ(second, make_error_code(errc::operation_in_progress));
}

TEST(Fiber, ExceptionsPropagateToTheJoiner) {
    asio::io_context io;
    hub h(io);
    bool caught_in_fiber = false;
    auto thrower = h.spawn([] {
        connection c(tcp_config());
        c.query("SELECT * FROM no_such_table_fiber");
    });
    auto joiner = h.spawn([&] {
        try {
            thrower.join();
        } catch (const error& e) {
            caught_in_fiber = e.server_code() == 1146;
        }
    });
    io.run();
    EXPECT_TRUE(caught_in_fiber);
    EXPECT_THROW(thrower.join(), error);
    joiner.join();
}

TEST(Fiber, JoinOutsideAFiberBeforeItFinishedIsRefused) {
    asio::io_context io;
    hub h(io);
    auto f = h.spawn([] { this_fiber::sleep_for(milliseconds(10)); });
    EXPECT_THROW(f.join(), std::logic_error);
    io.run();
    EXPECT_NO_THROW(f.join());
}

TEST(Fiber, AFiberWhoseConnectionIsKilledGetsANetworkError) {
    asio::io_context io;
    hub h(io);
    error_kind kind = error_kind::none;
    std::uint32_t id = 0;
    h.spawn([&] {
        connection c(tcp_config());
        id = c.connection_id();
        try {
            c.query("SELECT SLEEP(10)");
        } catch (const error& e) {
            kind = e.kind();
        }
    });
    h.spawn([&] {
        this_fiber::sleep_for(milliseconds(200));
        connection admin(unix_config());
        admin.query("KILL CONNECTION ?", id);
    });
    auto t0 = steady::now();
    io.run();
    EXPECT_EQ(kind, error_kind::network);
    EXPECT_LT(steady::now() - t0, std::chrono::seconds(3));
}

TEST(Fiber, SleepsAndTimeoutsUseTheLoop) {
    asio::io_context io;
    hub h(io);
    std::error_code timed_out;
    for (int i = 0; i < 100; ++i) h.spawn([] { this_fiber::sleep_for(milliseconds(200)); });
    h.spawn([&] {
        config cfg = tcp_config();
        cfg.read_timeout = milliseconds(200);
        connection c(cfg);
        results r;
        c.query("SELECT SLEEP(3)", r, timed_out);
    });
    auto t0 = steady::now();
    io.run();
    EXPECT_LT(steady::now() - t0, milliseconds(1500));
    EXPECT_EQ(timed_out, make_error_code(errc::timeout));
}

// ---------------------------------------------------------------- the bridge

#include "ambisql/async_connection.hpp"
#include "ambisql/bridge.hpp"

TEST(Bridge, TwoHundredCoroutinesCallSyncCodeThroughRunSync) {
    asio::io_context io;
    hub h(io);
    std::vector<std::int64_t> got(200, -1);
    for (std::size_t i = 0; i < got.size(); ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                got[i] = co_await run_sync(h, [&] { return sleepy_lookup(unix_config(), static_cast<std::int64_t>(i)); });
            },
            asio::detached);
    }
    auto t0 = steady::now();
    io.run();
    EXPECT_LT(steady::now() - t0, std::chrono::seconds(5));
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<std::int64_t>(i));
}

TEST(Bridge, ExceptionsCrossBothWays) {
    asio::io_context io;
    hub h(io);
    int server_code = 0;
    std::string from_awaitable;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            // Sync code throws; the coroutine catches.
            try {
                co_await run_sync(h, [] {
                    connection c(tcp_config());
                    c.query("SELECT * FROM no_such_table_bridge");
                });
            } catch (const error& e) {
                server_code = e.server_code();
            }
            // An awaitable throws; the sync code on the fiber catches.
            co_await run_sync(h, [&] {
                try {
                    await_([]() -> asio::awaitable<int> {
                        throw std::runtime_error("from the coroutine side");
                        co_return 1;
                    }());
                } catch (const std::runtime_error& e) {
                    from_awaitable = e.what();
                }
            });
        },
        asio::detached);
    io.run();
    EXPECT_EQ(server_code, 1146);
    EXPECT_EQ(from_awaitable, "from the coroutine side");
}

TEST(Bridge, SyncCodeOnAFiberAwaitsAsyncDatabaseCalls) {
    asio::io_context io;
    hub h(io);
    std::int64_t sum = 0;
    auto f = h.spawn([&] {
        async_connection ac(io.get_executor(), unix_config());
        await_(ac.async_connect(asio::use_awaitable));
        await_(ac.async_query("SELECT 40 + 2", asio::use_awaitable));
        sum = ac.result().row(0)[0].as<std::int64_t>();
    });
    io.run();
    f.join();
    EXPECT_EQ(sum, 42);
}

TEST(Bridge, AwaitOutsideAFiberFailsClearlyInsteadOfDeadlocking) {
    auto t0 = steady::now();
    EXPECT_THROW(await_([]() -> asio::awaitable<int> { co_return 1; }()), std::logic_error);
    EXPECT_LT(steady::now() - t0, milliseconds(100));
}
