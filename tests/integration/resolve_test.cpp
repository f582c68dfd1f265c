// Host names are looked up off the caller's thread: a slow DNS answer must not stall the
// other fibers of a hub, and connect_timeout covers the lookup. This binary replaces
// getaddrinfo (the library calls the executable's) so that two made-up names answer
// slowly or not at all; every other name goes to the C library's.
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstring>
#include <thread>

#include "ambisql/hub.hpp"
#include "common.hpp"

namespace {
constexpr const char* slow_name = "slow-dns.ambisql.test";  // answers 127.0.0.1 after 1 s
constexpr const char* no_name = "no-such-host.ambisql.test";
std::atomic<int> slow_lookups{0};
}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
    using fn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
    static fn real = reinterpret_cast<fn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
    if (node && std::strcmp(node, no_name) == 0) return EAI_NONAME;
    if (node && std::strcmp(node, slow_name) == 0) {
        if (hints && (hints->ai_flags & AI_NUMERICHOST)) return EAI_NONAME;  // not an address
        ++slow_lookups;
        std::this_thread::sleep_for(std::chrono::seconds(1));
        return real("127.0.0.1", service, hints, res);
    }
    return real(node, service, hints, res);
}

using namespace ambisql;
using namespace ambisql::test;
using clk = std::chrono::steady_clock;

TEST(Resolve, TwentyFibersWaitingOnSlowLookupsDoNotStallTheLoop) {
    boost::asio::io_context io(1);
    hub h(io);
    std::atomic<int> connected{0};
    int ticks = 0;
    bool done = false;
    const auto t0 = clk::now();
    for (int i = 0; i < 20; ++i) {
        h.spawn([&] {
            config cfg = tcp_config();
            cfg.host = slow_name;
            connection c(cfg);
            if (c.query("SELECT 1").row(0)[0].get_int() == 1) ++connected;
            if (connected == 20) done = true;
        });
    }
    h.spawn([&] {  // the loop stays free while the lookups run
        while (!done && clk::now() - t0 < std::chrono::seconds(10)) {
            this_fiber::sleep_for(std::chrono::milliseconds(50));
            ++ticks;
        }
    });
    io.run();
    const double secs = std::chrono::duration<double>(clk::now() - t0).count();
    EXPECT_EQ(connected, 20);
    EXPECT_GE(slow_lookups.load(), 20);
    EXPECT_LT(secs, 3.0) << "twenty 1 s lookups one after another would take 20 s";
    EXPECT_GE(ticks, 10) << "another fiber ran while the lookups were in flight";
}

TEST(Resolve, ConnectTimeoutCoversTheLookupAndUnknownNamesFailCleanly) {
    config cfg = tcp_config();
    cfg.host = slow_name;
    cfg.connect_timeout = std::chrono::milliseconds(300);
    const auto t0 = clk::now();
    try {
        connection c(cfg);
        ADD_FAILURE() << "connected through a lookup slower than the timeout";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::timeout)) << e.what();
    }
    EXPECT_LT(clk::now() - t0, std::chrono::milliseconds(900));

    cfg.host = no_name;
    cfg.connect_timeout = std::chrono::seconds(5);
    try {
        connection c(cfg);
        ADD_FAILURE() << "connected to a name that does not exist";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::host_not_found)) << e.what();
        EXPECT_NE(std::string(e.what()).find(no_name), std::string::npos) << e.what();
    }

    // The poll API waits for the lookup on a descriptor of its own, then on the socket.
    cfg.host = slow_name;
    nb_connection n(cfg);
    n.start_connect();
    auto w = n.poll();
    ASSERT_FALSE(w.done());
    EXPECT_TRUE(w.events() & wait_for::read) << "the lookup's descriptor becomes readable when it is done";
    for (int i = 0; i < 1000 && !w.done(); ++i) {
        pollfd p{n.fileno(), static_cast<short>(w.events() & wait_for::read ? POLLIN : POLLOUT), 0};
        ::poll(&p, 1, 100);
        w = n.poll();
    }
    n.check();
    n.start_query("SELECT 2");
    while (!(w = n.poll()).done()) {
        pollfd p{n.fileno(), static_cast<short>(w.events() & wait_for::read ? POLLIN : POLLOUT), 0};
        ::poll(&p, 1, 100);
    }
    n.check();
    EXPECT_EQ(n.result().row(0)[0].get_int(), 2);
}
