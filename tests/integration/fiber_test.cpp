// Fibers: the blocking API, unchanged, suspends only its fiber.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <csignal>

#include "ambisql/fiber_sync.hpp"
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

// A coroutine on the loop counting `every` ticks until `done`: the loop's freedom.
void tick_until(asio::io_context& io, const bool& done, milliseconds every, int& ticks) {
    asio::co_spawn(
        io,
        [&io, &done, every, &ticks]() -> asio::awaitable<void> {
            asio::steady_timer t(io);
            while (!done) {
                t.expires_after(every);
                co_await t.async_wait(asio::use_awaitable);
                ++ticks;
            }
        },
        asio::detached);
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

// A unix socket's full listen queue: the fiber waits on a timer between connects, the
// loop ticking meanwhile.
TEST(Fiber, AUnixSocketWithAFullListenQueueIsTriedAgainWhileTheLoopRuns) {
    relay queue(relay::mode::queue_full);
    asio::io_context io;
    hub h(io);
    int ticks = 0;
    bool done = false;
    tick_until(io, done, milliseconds(10), ticks);
    std::int64_t got = 0;
    std::string failed;
    h.spawn([&] {
        try {
            connection c(queue.through());
            got = c.query("SELECT 9").row(0)[0].as<std::int64_t>();
        } catch (const error& e) {
            failed = e.what();
        }
        done = true;
    });
    io.run();
    EXPECT_EQ(failed, "");
    EXPECT_EQ(got, 9);
    EXPECT_GE(ticks, 10) << "the loop was blocked while the fiber waited for room";
}

// A pipeline's spin budget applies to blocking threads only: on a fiber, waiting for
// the next response suspends the fiber, so the loop keeps serving others.
TEST(Fiber, APipelineOnAFiberNeverSpinsTheLoop) {
    asio::io_context io;
    hub h(io);
    int ticks = 0;
    bool done = false;
    tick_until(io, done, milliseconds(5), ticks);
    h.spawn([&] {
        struct stop_ticking {
            bool& done;
            ~stop_ticking() { done = true; }
        } stop{done};
        config cfg = unix_config();
        cfg.pipeline_spin = std::chrono::seconds(10);
        connection c(cfg);
        pipeline p;
        for (int i = 0; i < 4; ++i) p.query("SELECT SLEEP(0.1), ?", i);
        c.run(p);
        EXPECT_TRUE(p.all_ok());
    });
    io.run();
    EXPECT_GE(ticks, 30) << "400 ms of pipeline at one tick per 5 ms";
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

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "ambisql/async_connection.hpp"
#include "ambisql/bridge.hpp"

using namespace boost::asio::experimental::awaitable_operators;

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

namespace {
// Whether connection `id` still runs a statement, asked over another connection.
bool still_running(std::uint32_t id) {
    connection probe(tcp_config());
    return probe.query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO IS NOT NULL", id)
               .row(0)[0]
               .as<std::int64_t>() != 0;
}
}  // namespace

TEST(Bridge, CancellingTheAwaitingCoroutineKillsTheFibersQuery) {
    asio::io_context io;
    hub h(io);
    std::error_code seen;
    bool usable = false;
    bool timer_won = false;
    std::int64_t after = 0;
    std::uint32_t id = 0;
    auto t0 = steady::now();
    steady::duration cancel_took{};
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            connection c = co_await run_sync(h, [] { return connection(unix_config()); });
            id = c.connection_id();
            asio::steady_timer t(io, milliseconds(100));
            auto which = co_await (run_sync(h,
                                            [&] {
                                                try {
                                                    c.query("SELECT SLEEP(10)");
                                                } catch (const error& e) {
                                                    seen = e.code();
                                                    usable = e.connection_usable();
                                                    throw;
                                                }
                                            }) ||
                                   t.async_wait(asio::use_awaitable));
            timer_won = which.index() == 1;
            cancel_took = steady::now() - t0;
            after = co_await run_sync(h, [&] { return c.query("SELECT 6 * 7").row(0)[0].as<std::int64_t>(); });
        },
        asio::detached);
    io.run();
    EXPECT_TRUE(timer_won);
    EXPECT_LT(cancel_took, milliseconds(1500)) << "the SLEEP(10) was waited out";
    EXPECT_EQ(seen, make_error_code(errc::cancelled));
    EXPECT_TRUE(usable);
    EXPECT_EQ(after, 42) << "the connection is in sync after the cancelled query";
    EXPECT_FALSE(still_running(id));
}

TEST(Fiber, CancelReachesTheCurrentOperationNeverALaterOne) {
    asio::io_context io;
    hub h(io);
    std::error_code first, second;
    std::int64_t slept = -1, after = 0;
    bool open_after = false;
    fiber_event connected, first_done;
    fiber worker = h.spawn([&] {
        connection c(tcp_config());
        connected.set();
        // Cancelled meanwhile, between two operations: nothing to cancel, and the next
        // operation (unrelated to that cancel) runs to its end.
        this_fiber::sleep_for(milliseconds(50));
        try {
            slept = c.query("SELECT SLEEP(0.3)").row(0)[0].as<std::int64_t>();
        } catch (const error& e) {
            first = e.code();
        }
        first_done.set();
        try {  // cancelled while it waits for a streamed result
            auto s = c.stream("SELECT SLEEP(5)");
            row_view r;
            while (s.next(r)) {
            }
        } catch (const error& e) {
            second = e.code();
        }
        open_after = c.is_open();
        after = c.query("SELECT 1 + 1").row(0)[0].as<std::int64_t>();
    });
    h.spawn([&] {
        connected.wait();
        worker.cancel();
        first_done.wait();
        this_fiber::sleep_for(milliseconds(200));
        worker.cancel();
    });
    auto t0 = steady::now();
    io.run();
    worker.join();
    EXPECT_LT(steady::now() - t0, milliseconds(2500));
    EXPECT_FALSE(first) << "a cancel between operations hit a later one: " << first.message();
    EXPECT_EQ(slept, 0);
    EXPECT_EQ(second, make_error_code(errc::cancelled));
    EXPECT_TRUE(open_after);
    EXPECT_EQ(after, 2);
}

TEST(Fiber, CancellingAConnectClosesIt) {
    asio::io_context io;
    hub h(io);
    std::error_code seen;
    fiber worker = h.spawn([&] {
        config cfg = tcp_config();
        cfg.ssl = ssl_mode::required;
        cfg.ssl_ca = env().ca;
        connection c;
        try {
            c.connect(cfg);
        } catch (const error& e) {
            seen = e.code();
        }
        EXPECT_FALSE(c.is_open());
    });
    worker.cancel_all();  // before its first operation: cancel_all reaches it
    io.run();
    worker.join();
    EXPECT_EQ(seen, make_error_code(errc::cancelled));
}

TEST(Fiber, ClosingTheConnectionFromAnotherFiberEndsItsWaitToSendOrOnItsKill) {
    // A 32 MB query waiting to be written (the peer stopped reading), or a cancelled query
    // whose KILL waits on a side connection the server does not answer, when another fiber
    // closes the connection: it fails at once, not at its write or connect timeout (6 s
    // here). (Before the close reached the side connection, the KILL's wait took 4.5 s.)
    for (auto waiting : {relay::mode::deaf, relay::mode::stalling}) {
        relay r(waiting);
        config cfg = r.through();
        cfg.write_timeout = cfg.connect_timeout = std::chrono::seconds(6);
        asio::io_context io;
        hub h(io);
        connection c;
        std::error_code seen;
        steady::time_point closed_at{}, failed_at{};
        fiber_event connected;
        fiber worker = h.spawn([&] {
            c.connect(cfg);
            connected.set();
            try {
                c.query(waiting == relay::mode::deaf ? "SELECT LENGTH('" + std::string(32'000'000, 'x') + "')"
                                                     : std::string("SELECT SLEEP(5)"));
            } catch (const error& e) {
                seen = e.code();
            }
            failed_at = steady::now();
        });
        h.spawn([&] {
            connected.wait();
            this_fiber::sleep_for(milliseconds(200));
            if (waiting == relay::mode::stalling) worker.cancel();  // its KILL connects to the relay
            this_fiber::sleep_for(milliseconds(500));
            closed_at = steady::now();
            c.close();
        });
        io.run();
        worker.join();
        EXPECT_EQ(seen, make_error_code(errc::connection_closed)) << seen.message();
        EXPECT_LT(failed_at - closed_at, std::chrono::seconds(1));
        EXPECT_FALSE(c.is_open());
    }
}

TEST(Fiber, DestroyingTheHubUnwindsFibersStillWaiting) {
    bool unwound = false;
    fiber f;  // outlives the hub and the loop
    {
        asio::io_context io;
        hub h(io);
        f = h.spawn([&] {
            struct on_exit {
                bool& flag;
                ~on_exit() { flag = true; }
            } guard{unwound};
            connection c(unix_config());
            c.query("SELECT SLEEP(5)");
        });
        io.run_for(milliseconds(200));
        EXPECT_FALSE(f.done());
    }
    EXPECT_TRUE(unwound) << "the suspended fiber's destructors did not run";
    EXPECT_TRUE(f.done());
    EXPECT_THROW(f.join(), std::logic_error);
}

namespace {
// Recursion that the compiler cannot flatten: each frame keeps a live buffer.
int deep(int n) {
    volatile char frame[1024];
    frame[0] = static_cast<char>(n);
    return n <= 0 ? frame[0] : deep(n - 1) + frame[0];
}
}  // namespace

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AMBISQL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define AMBISQL_ASAN 1
#endif

TEST(FiberDeathTest, AStackOverflowHitsTheGuardPageAndCrashesLoudly) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    auto overflow = [] {
        asio::io_context io;
        hub h(io, 64 * 1024);
        h.spawn([] { std::printf("%d\n", deep(1 << 20)); });  // ~1 GiB of frames
        io.run();
    };
#ifdef AMBISQL_ASAN
    EXPECT_DEATH(overflow(), "stack-overflow|SEGV");  // ASan reports the fault
#else
    EXPECT_EXIT(overflow(), testing::KilledBySignal(SIGSEGV), "");  // the guard page faults
#endif
}
