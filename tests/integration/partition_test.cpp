// A server that vanishes without a word: the path to it goes through a veth link into a
// network namespace (ambisql_blackhole), and the test takes the link down, so packets are
// simply lost: no FIN, no RST. Every model's operation must end within its timeout plus
// 10% with a clear error, and leave the connection closed, never out of step; a KILL's
// side connection towards the dead peer is bounded by cancel_timeout; with no timeouts,
// TCP keepalive ends the wait; the pool discards such connections and serves waiters from
// a live host. Skipped, with the reason, where namespaces cannot be made.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <poll.h>

#include <chrono>
#include <future>
#include <thread>

#include "ambisql/async_connection.hpp"
#include "ambisql/hub.hpp"
#include "ambisql/nb_connection.hpp"
#include "ambisql/pool.hpp"
#include "common.hpp"

namespace ambisql::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto timeout = 2000ms;
constexpr double allowed = 2.0 * 1.1;  // the timeout plus 10%

double since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

class Partition : public ::testing::Test {
protected:
    void SetUp() override {
        if (!link_.available()) GTEST_SKIP() << "partition tests skipped: " << link_.why();
    }
    // Through the link, with every timeout set and keepalive off (it has a test of its own).
    config settings() const {
        config c = link_.through();
        c.connect_timeout = c.read_timeout = c.write_timeout = timeout;
        c.cancel_timeout = timeout;
        c.keepalive = false;
        return c;
    }
    // Takes the link down `after` from now, on a thread of its own.
    std::future<void> down_after(std::chrono::milliseconds after) {
        return std::async(std::launch::async, [this, after] {
            std::this_thread::sleep_for(after);
            link_.down();
        });
    }
    blackhole link_;
};

// Polls `c` to done with poll(2) on whatever fileno() names each time.
void poll_to_done(nb_connection& c) {
    for (;;) {
        auto w = c.poll();
        if (w.done()) return;
        pollfd p{c.fileno(), static_cast<short>(w.events() & wait_for::read ? POLLIN : POLLOUT), 0};
        int ms = 50;
        if (w.deadline() != clock::time_point::max())
            ms = static_cast<int>(std::clamp<long long>(
                std::chrono::duration_cast<std::chrono::milliseconds>(w.deadline() - clock::now()).count() + 1, 0, 50));
        ::poll(&p, 1, ms);
    }
}

TEST_F(Partition, ABlockingQueryEndsWithinTheReadTimeoutAndTheConnectionIsClosed) {
    connection c(settings());
    ASSERT_EQ(c.query("SELECT 1").row(0)[0].as<int>(), 1);
    auto gone = down_after(300ms);  // while the query waits for its answer
    const auto t0 = clock::now();
    try {
        c.query("SELECT SLEEP(5)");
        ADD_FAILURE() << "the query must fail";
    } catch (const error& e) {
        EXPECT_EQ(e.diag().code, errc::timeout) << e.what();
    }
    EXPECT_LE(since(t0), allowed);
    EXPECT_GE(since(t0), 1.9) << "not before the timeout";
    EXPECT_FALSE(c.is_open()) << "closed, never out of step";
    gone.get();
    const auto t1 = clock::now();  // a statement sent into the void: the same bound
    EXPECT_THROW(c.query("SELECT 1"), error) << "a closed connection refuses at once";
    EXPECT_LT(since(t1), 0.1);
}

TEST_F(Partition, AQuerySentIntoTheVoidEndsWithinTheReadTimeout) {
    connection c(settings());
    ASSERT_EQ(c.query("SELECT 1").row(0)[0].as<int>(), 1);
    link_.down();
    const auto t0 = clock::now();
    EXPECT_THROW(c.query("SELECT 2"), error);
    EXPECT_LE(since(t0), allowed);
    EXPECT_FALSE(c.is_open());
}

TEST_F(Partition, AQueryLargerThanTheSocketBuffersEndsWithinTheWriteTimeout) {
    config cfg = settings();
    cfg.read_timeout = 0ms;  // only the write's own bound
    connection c(cfg);
    ASSERT_EQ(c.query("SELECT 1").row(0)[0].as<int>(), 1);
    link_.down();
    const std::string big = "SELECT LENGTH('" + std::string(32 << 20, 'x') + "')";  // 32 MiB: the buffers fill
    const auto t0 = clock::now();
    try {
        c.query(big);
        ADD_FAILURE() << "the query must fail";
    } catch (const error& e) {
        EXPECT_EQ(e.diag().code, errc::timeout) << e.what();
    }
    EXPECT_LE(since(t0), allowed);
    EXPECT_FALSE(c.is_open());
}

TEST_F(Partition, ALargeQueryOfAFiberOrAPolledConnectionOrAsioEndsWithinTheWriteTimeout) {
    config cfg = settings();
    cfg.read_timeout = 0ms;
    const std::string big = "SELECT LENGTH('" + std::string(32 << 20, 'x') + "')";
    // a fiber (its waits go through the hub)
    asio::io_context io;
    hub h(io);
    double fiber_took = -1;
    h.spawn([&] {
        connection c(cfg);
        link_.down();
        const auto t0 = clock::now();
        try {
            c.query(big);
        } catch (const error&) {
            fiber_took = since(t0);
        }
        EXPECT_FALSE(c.is_open());
    });
    io.run();
    EXPECT_GE(fiber_took, 0) << "the fiber's query must fail";
    EXPECT_LE(fiber_took, allowed);
    link_.up();
    // the poll API
    nb_connection n(cfg);
    n.start_connect();
    poll_to_done(n);
    ASSERT_TRUE(n.ok()) << n.error().message;
    link_.down();
    auto t0 = clock::now();
    n.start_query(big);
    poll_to_done(n);
    EXPECT_EQ(n.error().code, errc::timeout) << n.error().message;
    EXPECT_LE(since(t0), allowed);
    EXPECT_FALSE(n.is_open());
    link_.up();
    // Asio
    asio::io_context io2;
    async_connection a(io2.get_executor(), cfg);
    boost::system::error_code connected, queried;
    double took = -1;
    asio::co_spawn(
        io2,
        [&]() -> asio::awaitable<void> {
            co_await a.async_connect(asio::redirect_error(asio::use_awaitable, connected));
            link_.down();
            const auto t1 = clock::now();
            co_await a.async_query(big, asio::redirect_error(asio::use_awaitable, queried));
            took = since(t1);
        },
        asio::detached);
    io2.run();
    ASSERT_FALSE(connected) << connected.message();
    EXPECT_EQ(queried, errc::timeout) << queried.message();
    EXPECT_LE(took, allowed);
    EXPECT_FALSE(a.is_open());
}

TEST_F(Partition, AConnectEndsWithinTheConnectTimeout) {
    link_.down();
    connection c;
    const auto t0 = clock::now();
    try {
        c.connect(settings());
        ADD_FAILURE() << "the connect must fail";
    } catch (const error& e) {
        EXPECT_NE(std::string(e.what()).find("time"), std::string::npos) << e.what();
    }
    EXPECT_LE(since(t0), allowed);
    EXPECT_FALSE(c.is_open());
}

TEST_F(Partition, APolledQueryEndsWithinTheReadTimeout) {
    nb_connection c(settings());
    c.start_connect();
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto gone = down_after(300ms);
    const auto t0 = clock::now();
    c.start_query("SELECT SLEEP(5)");
    poll_to_done(c);
    EXPECT_FALSE(c.ok());
    EXPECT_EQ(c.error().code, errc::timeout) << c.error().message;
    EXPECT_LE(since(t0), allowed);
    EXPECT_FALSE(c.is_open());
    gone.get();
}

TEST_F(Partition, AKillTowardsTheVanishedServerIsBoundedByTheCancelTimeout) {
    config cfg = settings();
    cfg.read_timeout = 0ms;  // only the cancellation's own bound
    nb_connection c(cfg);
    c.start_connect();
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
    c.start_query("SELECT SLEEP(30)");
    (void)c.poll();
    link_.down();
    const auto t0 = clock::now();
    c.cancel();  // its side connection goes to the same dead path
    poll_to_done(c);
    EXPECT_FALSE(c.ok());
    EXPECT_LE(since(t0), allowed);
    EXPECT_FALSE(c.is_open()) << "a KILL that cannot be delivered closes the connection";
}

TEST_F(Partition, AnAsioQueryEndsWithinTheReadTimeout) {
    asio::io_context io;
    async_connection c(io.get_executor(), settings());
    boost::system::error_code connected, queried;
    double took = 0;
    auto gone = down_after(300ms);  // (started now: the connect takes milliseconds)
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await c.async_connect(asio::redirect_error(asio::use_awaitable, connected));
            const auto t0 = clock::now();
            co_await c.async_query("SELECT SLEEP(5)", asio::redirect_error(asio::use_awaitable, queried));
            took = since(t0);
        },
        asio::detached);
    io.run();
    gone.get();
    ASSERT_FALSE(connected) << connected.message();
    EXPECT_EQ(queried, errc::timeout) << queried.message();
    EXPECT_LE(took, allowed);
    EXPECT_FALSE(c.is_open());
}

TEST_F(Partition, AFibersQueryEndsWithinTheReadTimeoutAndTheLoopStaysFree) {
    asio::io_context io;
    hub h(io);
    double took = 0;
    bool failed = false, open = true;
    std::future<void> gone;
    h.spawn([&] {
        connection c(settings());
        gone = down_after(300ms);
        const auto t0 = clock::now();
        try {
            c.query("SELECT SLEEP(5)");
        } catch (const error&) {
            failed = true;
        }
        took = since(t0);
        open = c.is_open();
    });
    int ticks = 0;  // the loop serves a timer every 100 ms meanwhile
    asio::steady_timer tick(io);
    std::function<void()> again = [&] {
        tick.expires_after(100ms);
        tick.async_wait([&](boost::system::error_code) {
            if (++ticks < 15) again();
        });
    };
    again();
    io.run();
    gone.get();
    EXPECT_TRUE(failed);
    EXPECT_LE(took, allowed);
    EXPECT_FALSE(open);
    EXPECT_GE(ticks, 15);
}

TEST_F(Partition, WithNoTimeoutsKeepaliveEndsTheWaitWithinItsStatedTime) {
    config cfg = link_.through();
    cfg.read_timeout = cfg.write_timeout = 0ms;
    cfg.keepalive = true;  // 1 s idle, then 2 probes 1 s apart: stated time 3 s
    cfg.keepalive_idle = 1s;
    cfg.keepalive_interval = 1s;
    cfg.keepalive_count = 2;
    connection c(cfg);
    ASSERT_EQ(c.query("SELECT 1").row(0)[0].as<int>(), 1);
    auto gone = down_after(300ms);
    const auto t0 = clock::now();
    EXPECT_THROW(c.query("SELECT SLEEP(30)"), error);
    EXPECT_LE(since(t0), 3.0 * 1.1);
    EXPECT_FALSE(c.is_open());
    gone.get();
}

TEST_F(Partition, ThePoolDiscardsTheDeadConnectionAndServesItsWaiterFromALiveHost) {
    pool_config pc;
    pc.connection = settings();
    // The vanishing host first, the server itself second (sequential: the first that works).
    const config live = tcp_config();
    pc.connection.hosts = {{pc.connection.host, pc.connection.port}, {live.host, live.port}};
    pc.limits.max_size = 1;
    pc.limits.acquire_timeout = 10s;
    pool p(pc);
    auto first = p.acquire();
    ASSERT_EQ(first->query("SELECT 1").row(0)[0].as<int>(), 1);
    // A waiter queues for the pool's only connection.
    auto waiter = std::async(std::launch::async, [&] {
        const auto t0 = clock::now();
        auto c = p.acquire();
        const int v = c->query("SELECT 7").row(0)[0].as<int>();
        return std::make_pair(v, since(t0));
    });
    std::this_thread::sleep_for(100ms);
    link_.down();
    EXPECT_THROW(first->query("SELECT 2"), error);  // within the read timeout
    first.release();  // given back broken: discarded, its place handed to the waiter
    auto [value, waited] = waiter.get();
    EXPECT_EQ(value, 7) << "served on the live host";
    // read timeout (the borrower's failure) + connect timeout (the dead host tried first)
    EXPECT_LE(waited, 0.1 + 2 * allowed);
    EXPECT_EQ(p.stats().total, 1u);
}

}  // namespace
}  // namespace ambisql::test
