// Google Benchmark micro-benchmarks of the implicit-async machinery (no I/O):
//   fiber_switch        a fiber yields to the loop and is resumed (two context switches)
//   fiber_spawn_join    spawn a fiber that returns at once, and join it from a fiber
//   run_sync_round_trip a coroutine runs a trivial function through run_sync
//   await_round_trip    sync code on a fiber awaits a trivial awaitable
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "ambisql/bridge.hpp"
#include "ambisql/hub.hpp"

namespace asio = boost::asio;
using namespace ambisql;

static void fiber_switch(benchmark::State& state) {
    asio::io_context io;
    hub h(io);
    h.spawn([&] {
        for (auto _ : state) this_fiber::yield();
    });
    io.run();
}
BENCHMARK(fiber_switch);

static void fiber_spawn_join(benchmark::State& state) {
    asio::io_context io;
    hub h(io);
    h.spawn([&] {
        for (auto _ : state) {
            fiber f = h.spawn([] {});
            f.join();
        }
    });
    io.run();
}
BENCHMARK(fiber_spawn_join);

static void run_sync_round_trip(benchmark::State& state) {
    asio::io_context io;
    hub h(io);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            int i = 0;
            for (auto _ : state) {
                int v = co_await run_sync(h, [&] { return ++i; });
                benchmark::DoNotOptimize(v);
            }
        },
        asio::detached);
    io.run();
}
BENCHMARK(run_sync_round_trip);

static void await_round_trip(benchmark::State& state) {
    asio::io_context io;
    hub h(io);
    h.spawn([&] {
        int i = 0;
        for (auto _ : state) {
            int v = await_([](int x) -> asio::awaitable<int> { co_return x + 1; }(i));
            benchmark::DoNotOptimize(i = v);
        }
    });
    io.run();
}
BENCHMARK(await_round_trip);

BENCHMARK_MAIN();
