// Fiber-aware mutex, condition variable and event: a wait suspends the fiber, never the
// thread that runs the loop.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <thread>

#include "ambisql/fiber_sync.hpp"
#include "ambisql/hub.hpp"
#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;
namespace asio = boost::asio;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {
// A coroutine that counts 10 ms ticks until `stop`: proof that the loop keeps running.
void ticker(asio::io_context& io, int& ticks, const bool& stop) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer t(io);
            while (!stop) {
                t.expires_after(milliseconds(10));
                co_await t.async_wait(asio::use_awaitable);
                ++ticks;
            }
        },
        asio::detached);
}
}  // namespace

TEST(FiberSync, MutexSuspendsTheWaitingFiberAndHandsOverInOrder) {
    asio::io_context io;
    hub h(io);
    fiber_mutex m;
    std::vector<int> order;
    int ticks = 0;
    bool stop = false;
    ticker(io, ticks, stop);
    h.spawn([&] {
        std::lock_guard lk(m);
        order.push_back(0);
        this_fiber::sleep_for(milliseconds(200));  // holds the lock across a suspension
        order.push_back(1);
    });
    for (int i = 2; i < 5; ++i) {
        h.spawn([&, i] {
            EXPECT_FALSE(m.try_lock());
            std::lock_guard lk(m);
            order.push_back(i);
        });
    }
    h.spawn([&] {
        this_fiber::sleep_for(milliseconds(300));
        stop = true;
    });
    io.run();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_GE(ticks, 10) << "the loop stopped while fibers waited for the mutex";
    EXPECT_TRUE(m.try_lock());
    m.unlock();
}

TEST(FiberSync, ConditionVariableProducerConsumer) {
    asio::io_context io;
    hub h(io);
    fiber_mutex m;
    fiber_condition_variable cv;
    std::deque<int> jobs;
    std::vector<int> consumed;
    bool closed = false;
    for (int c = 0; c < 3; ++c) {
        h.spawn([&] {
            for (;;) {
                std::unique_lock lk(m);
                cv.wait(lk, [&] { return !jobs.empty() || closed; });
                if (jobs.empty()) return;
                consumed.push_back(jobs.front());
                jobs.pop_front();
            }
        });
    }
    h.spawn([&] {
        for (int i = 0; i < 100; ++i) {
            {
                std::lock_guard lk(m);
                jobs.push_back(i);
            }
            cv.notify_one();
            if (i % 10 == 0) this_fiber::sleep_for(milliseconds(1));
        }
        std::lock_guard lk(m);
        closed = true;
        cv.notify_all();
    });
    io.run();  // returns only when every consumer finished: none is left waiting
    std::sort(consumed.begin(), consumed.end());
    ASSERT_EQ(consumed.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(consumed[i], i);
}

TEST(FiberSync, TimedWaitsTimeOutOnTheLoop) {
    asio::io_context io;
    hub h(io);
    fiber_mutex m;
    fiber_condition_variable cv;
    fiber_event never;
    std::cv_status status = std::cv_status::no_timeout;
    bool event_result = true;
    steady::duration cv_took{}, ev_took{};
    int ticks = 0;
    bool stop = false;
    ticker(io, ticks, stop);
    h.spawn([&] {
        std::unique_lock lk(m);
        auto t0 = steady::now();
        status = cv.wait_for(lk, milliseconds(150));
        cv_took = steady::now() - t0;
    });
    h.spawn([&] {
        auto t0 = steady::now();
        event_result = never.wait_for(milliseconds(150));
        ev_took = steady::now() - t0;
        stop = true;
    });
    io.run();
    EXPECT_EQ(status, std::cv_status::timeout);
    EXPECT_FALSE(event_result);
    EXPECT_GE(cv_took, milliseconds(140));
    EXPECT_LT(cv_took, milliseconds(1000));
    EXPECT_GE(ev_took, milliseconds(140));
    EXPECT_GE(ticks, 8) << "the timed waits blocked the loop";
}

TEST(FiberSync, AnEventSetByAnotherThreadWakesFibersWaitingOnTheDatabaseLoop) {
    asio::io_context io;
    hub h(io);
    fiber_event go;
    int woken = 0;
    std::int64_t db = 0;
    for (int i = 0; i < 10; ++i) {
        h.spawn([&] {
            go.wait();
            ++woken;
        });
    }
    h.spawn([&] {  // database work goes on meanwhile
        connection c(unix_config());
        db = c.query("SELECT SLEEP(0.1), 5").row(0)[1].as<std::int64_t>();
    });
    std::thread setter([&] {
        std::this_thread::sleep_for(milliseconds(200));
        go.set();
    });
    io.run();
    setter.join();
    EXPECT_EQ(woken, 10);
    EXPECT_EQ(db, 5);
    EXPECT_TRUE(go.is_set());
    EXPECT_TRUE(go.wait_for(milliseconds(0))) << "a set event does not block";
    go.reset();
    EXPECT_FALSE(go.wait_for(milliseconds(1)));
}

TEST(FiberSync, OneMutexSharedByFibersAndPlainThreads) {
    asio::io_context io;
    hub h(io);
    fiber_mutex m;
    long counter = 0;   // guarded by m
    int inside = 0;     // guarded by m: never more than one holder
    int overlap = 0;
    auto critical = [&](bool on_fiber) {
        std::lock_guard lk(m);
        if (++inside != 1) ++overlap;
        long v = counter;
        if (on_fiber)
            this_fiber::yield();  // other fibers run while this one holds the lock
        else
            std::this_thread::yield();
        counter = v + 1;
        --inside;
    };
    for (int f = 0; f < 20; ++f)
        h.spawn([&] {
            for (int i = 0; i < 200; ++i) critical(true);
        });
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) critical(false);
        });
    io.run();
    for (auto& t : threads) t.join();
    EXPECT_EQ(counter, 20 * 200 + 2 * 2000);
    EXPECT_EQ(overlap, 0);
}

TEST(FiberSync, PlainThreadsUseThePrimitivesWithoutAHub) {
    fiber_mutex m;
    fiber_condition_variable cv;
    bool ready = false;
    std::thread t([&] {
        std::this_thread::sleep_for(milliseconds(50));
        std::lock_guard lk(m);
        ready = true;
        cv.notify_all();
    });
    std::unique_lock lk(m);
    EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(5), [&] { return ready; }));
    lk.unlock();
    t.join();
}
