// concurrent_point_select/cN: N connections doing point selects for a fixed time
// (concurrent_point_select/cN/DRIVER: that driver only).
//   ambisql-coro: one thread, N C++20 coroutines on Asio
//   ambisql-poll: one thread, the poll()/fileno() API on raw epoll
//   libmariadb:   N threads, each with a blocking connection (what sysbench does)
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <random>
#include <thread>

#include "ambisql/async_connection.hpp"
#include "ambisql/bridge.hpp"
#include "ambisql/connection.hpp"
#include "ambisql/hub.hpp"
#include "ambisql/nb_connection.hpp"
#include "bench.hpp"

namespace bench {

namespace {

namespace asio = boost::asio;
constexpr double seconds = 3.0;

int point_sql(char* buf, std::size_t cap, std::mt19937& rng) {
    return std::snprintf(buf, cap, "SELECT c FROM sbtest1 WHERE id = %d", static_cast<int>(rng() % 10000) + 1);
}

void report(const std::string& name, const char* driver, std::uint64_t queries, timing t) {
    record(name, driver, "qps", queries / t.wall);
    record(name, driver, "client_cpu_s_per_query", t.cpu / queries);
    if (t.server_cpu >= 0) record(name, driver, "server_cpu_s_per_query", t.server_cpu / queries);
    if (t.server_sleeps >= 0) record(name, driver, "server_sleeps_per_query", t.server_sleeps / queries);
}

void run_libmariadb(const std::string& name, int n) {
    std::vector<MYSQL*> conns;
    for (int i = 0; i < n; ++i) conns.push_back(ref_connect(false));
    std::atomic<std::uint64_t> total{0};
    auto t = measure([&] {
        const auto end = clk::now() + std::chrono::duration<double>(seconds);
        std::vector<std::thread> threads;
        for (int i = 0; i < n; ++i) {
            threads.emplace_back([&, i] {
                std::mt19937 rng(i);
                char sql[96];
                std::uint64_t q = 0;
                while (clk::now() < end) {
                    int len = point_sql(sql, sizeof sql, rng);
                    ref_query(conns[i], sql, len);
                    MYSQL_RES* r = mysql_store_result(conns[i]);
                    while (mysql_fetch_row(r)) {
                    }
                    mysql_free_result(r);
                    ++q;
                }
                total += q;
            });
        }
        for (auto& th : threads) th.join();
    });
    for (auto* m : conns) mysql_close(m);
    report(name, "libmariadb", total, t);
}

void run_coro(const std::string& name, int n) {
    asio::io_context io(1);
    std::vector<std::unique_ptr<ambisql::async_connection>> conns;
    for (int i = 0; i < n; ++i) {
        conns.push_back(std::make_unique<ambisql::async_connection>(io.get_executor(), base_config(false)));
        asio::co_spawn(io, conns.back()->async_connect(asio::use_awaitable), asio::detached);
    }
    io.run();
    io.restart();
    std::uint64_t total = 0;
    auto t = measure([&] {
        const auto end = clk::now() + std::chrono::duration<double>(seconds);
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(
                io,
                [&, i]() -> asio::awaitable<void> {
                    std::mt19937 rng(i);
                    char sql[96];
                    auto& c = *conns[i];
                    while (clk::now() < end) {
                        int len = point_sql(sql, sizeof sql, rng);
                        co_await c.async_query(std::string_view(sql, len), asio::use_awaitable);
                        for (auto row : c.result().rows()) (void)row.raw(0);
                        ++total;
                    }
                },
                asio::detached);
        }
        io.run();
    });
    report(name, "ambisql-coro", total, t);
}

void run_poll(const std::string& name, int n) {
    std::vector<ambisql::nb_connection> conns(n);
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<int> armed(n, -1);
    std::vector<std::mt19937> rngs;
    for (int i = 0; i < n; ++i) rngs.emplace_back(i);
    auto arm = [&](int i, const ambisql::poll_result& w) {
        epoll_event ev{};
        ev.events = (w.events() & ambisql::wait_for::read ? EPOLLIN : EPOLLOUT) | EPOLLONESHOT;
        ev.data.u32 = static_cast<unsigned>(i);
        int fd = conns[i].fileno();
        if (armed[i] != fd) {
            if (armed[i] >= 0) ::epoll_ctl(ep, EPOLL_CTL_DEL, armed[i], nullptr);
            ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            armed[i] = fd;
        } else {
            ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
    };
    // Connect all (not timed).
    int pending = n;
    for (int i = 0; i < n; ++i) {
        conns[i].set_config(base_config(false));
        conns[i].start_connect();
        auto w = conns[i].poll();
        if (w.done()) {
            conns[i].check();
            --pending;
        } else {
            arm(i, w);
        }
    }
    epoll_event events[256];
    while (pending > 0) {
        int k = ::epoll_wait(ep, events, 256, 1000);
        for (int j = 0; j < k; ++j) {
            int i = static_cast<int>(events[j].data.u32);
            auto w = conns[i].poll();
            if (w.done()) {
                conns[i].check();
                --pending;
            } else {
                arm(i, w);
            }
        }
    }
    std::uint64_t total = 0;
    auto t = measure([&] {
        const auto end = clk::now() + std::chrono::duration<double>(seconds);
        char sql[96];
        int active = n;
        // Starts the next query on i (or retires it), then polls until it must wait.
        auto drive = [&](int i, bool finished) {
            for (;;) {
                if (finished) {
                    conns[i].check();
                    for (auto row : conns[i].result().rows()) (void)row.raw(0);
                    ++total;
                }
                if (clk::now() >= end) {
                    --active;
                    return;
                }
                int len = point_sql(sql, sizeof sql, rngs[i]);
                conns[i].start_query(std::string_view(sql, len));
                auto w = conns[i].poll();
                if (!w.done()) return arm(i, w);
                finished = true;
            }
        };
        for (int i = 0; i < n; ++i) drive(i, false);
        while (active > 0) {
            int k = ::epoll_wait(ep, events, 256, 1000);
            for (int j = 0; j < k; ++j) {
                int i = static_cast<int>(events[j].data.u32);
                auto w = conns[i].poll();
                if (w.done())
                    drive(i, true);
                else
                    arm(i, w);
            }
        }
    });
    ::close(ep);
    report(name, "ambisql-poll", total, t);
}

// Blocking connections, opened on the hub's fibers so that connecting never blocks the loop.
std::vector<std::unique_ptr<ambisql::connection>> open_on_fibers(asio::io_context& io, ambisql::hub& hub, int n) {
    std::vector<std::unique_ptr<ambisql::connection>> conns(n);
    for (int i = 0; i < n; ++i) hub.spawn([&, i] { conns[i] = std::make_unique<ambisql::connection>(base_config(false)); });
    io.run();
    io.restart();
    return conns;
}

// The synchronous routine the fiber and bridge drivers run for each query.
void sync_point_select(ambisql::connection& c, std::mt19937& rng, ambisql::results& r) {
    char sql[96];
    int len = point_sql(sql, sizeof sql, rng);
    c.query(std::string_view(sql, len), r);
    for (auto row : r.rows()) (void)row.raw(0);
}

// N fibers on one thread, each running plain blocking-API code.
void run_fiber(const std::string& name, int n) {
    asio::io_context io(1);
    ambisql::hub hub(io);
    auto conns = open_on_fibers(io, hub, n);
    std::uint64_t total = 0;
    auto t = measure([&] {
        const auto end = clk::now() + std::chrono::duration<double>(seconds);
        for (int i = 0; i < n; ++i) {
            hub.spawn([&, i] {
                std::mt19937 rng(i);
                ambisql::results r;
                while (clk::now() < end) {
                    sync_point_select(*conns[i], rng, r);
                    ++total;
                }
            });
        }
        io.run();
    });
    report(name, "ambisql-fiber", total, t);
}

// N coroutines, each calling synchronous code through run_sync for every query.
void run_bridge(const std::string& name, int n) {
    asio::io_context io(1);
    ambisql::hub hub(io);
    auto conns = open_on_fibers(io, hub, n);
    std::uint64_t total = 0;
    auto t = measure([&] {
        const auto end = clk::now() + std::chrono::duration<double>(seconds);
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(
                io,
                [&, i]() -> asio::awaitable<void> {
                    std::mt19937 rng(i);
                    ambisql::results r;
                    while (clk::now() < end) {
                        // The "legacy" synchronous routine, called from the coroutine.
                        co_await ambisql::run_sync(hub, [&] { sync_point_select(*conns[i], rng, r); });
                        ++total;
                    }
                },
                asio::detached);
        }
        io.run();
    });
    report(name, "ambisql-bridge", total, t);
}

}  // namespace

void concurrent_point_select(const std::string& name, int n, const std::string& only) {
    if (only.empty() || only == "libmariadb") run_libmariadb(name, n);
    if (only.empty() || only == "ambisql-coro") run_coro(name, n);
    if (only.empty() || only == "ambisql-poll") run_poll(name, n);
    if (only.empty() || only == "ambisql-fiber") run_fiber(name, n);
    if (only.empty() || only == "ambisql-bridge") run_bridge(name, n);
}

}  // namespace bench
