// Another green-thread library, not ambisql's hub, drives the blocking API through the
// public wait hook: a tiny scheduler made of Boost.Context fibers, a run queue and poll(2).
#include <poll.h>

#include <boost/context/fiber.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;
namespace ctx = boost::context;
using std::chrono::milliseconds;

namespace {

class tiny_scheduler final : public wait_hook {
public:
    void spawn(std::function<void()> fn) {
        auto t = std::make_unique<task>();
        task* raw = t.get();
        raw->body = std::move(fn);
        raw->self = ctx::fiber([raw](ctx::fiber&& sched) {
            raw->sched = std::move(sched);
            raw->body();
            raw->done = true;
            return std::move(raw->sched);
        });
        tasks_.push_back(std::move(t));
    }

    // Runs every task to its end on the calling thread.
    void run() {
        scoped_wait_hook hook(this);
        for (;;) {
            bool any = false;
            for (auto& t : tasks_) {
                if (t->done) continue;
                any = true;
                if (t->fd < 0) {
                    current_ = t.get();
                    t->self = std::move(t->self).resume();
                    current_ = nullptr;
                }
            }
            if (!any) return;
            poll_waiters();
        }
    }

    std::error_code wait(int fd, unsigned events, clock::time_point deadline) override {
        task* t = current_;
        if (!t) return errc::wait_failed;
        ++waits;
        t->fd = fd;
        t->events = static_cast<short>(((events & wait_for::read) ? POLLIN : 0) | ((events & wait_for::write) ? POLLOUT : 0));
        t->deadline = deadline;
        t->timed_out = false;
        t->sched = std::move(t->sched).resume();  // to the scheduler until ready
        return t->timed_out ? std::error_code(errc::timeout) : std::error_code();
    }

    int waits = 0;

private:
    struct task {
        ctx::fiber self, sched;
        std::function<void()> body;
        bool done = false;
        int fd = -1;  // waiting on fd when >= 0
        short events = 0;
        clock::time_point deadline;
        bool timed_out = false;
    };

    void poll_waiters() {
        std::vector<pollfd> fds;
        std::vector<task*> who;
        clock::time_point next = clock::time_point::max();
        for (auto& t : tasks_) {
            if (t->done || t->fd < 0) continue;
            fds.push_back({t->fd, t->events, 0});
            who.push_back(t.get());
            next = std::min(next, t->deadline);
        }
        if (fds.empty()) return;
        int timeout = -1;
        if (next != clock::time_point::max())
            timeout = static_cast<int>(std::max<long long>(
                0, std::chrono::duration_cast<milliseconds>(next - clock::now()).count() + 1));
        ::poll(fds.data(), fds.size(), timeout);
        auto now = clock::now();
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].revents != 0) {
                who[i]->fd = -1;
            } else if (now >= who[i]->deadline) {
                who[i]->timed_out = true;
                who[i]->fd = -1;
            }
        }
    }

    std::vector<std::unique_ptr<task>> tasks_;
    task* current_ = nullptr;
};

}  // namespace

TEST(GreenThreads, AHandMadeSchedulerRunsTwentyBlockingSleepsConcurrentlyOnOneThread) {
    tiny_scheduler sched;
    std::vector<std::int64_t> got(20, -1);
    for (std::size_t i = 0; i < got.size(); ++i) {
        sched.spawn([&, i] {
            config cfg = i % 2 ? tcp_config() : unix_config();
            connection c(cfg);  // connect, handshake, query: every wait goes to the scheduler
            got[i] = c.query("SELECT SLEEP(0.5), ?", static_cast<std::int64_t>(i)).row(0)[1].as<std::int64_t>();
        });
    }
    auto t0 = clock::now();
    sched.run();
    EXPECT_LT(clock::now() - t0, std::chrono::seconds(3)) << "serialized: 10 s";
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<std::int64_t>(i));
    EXPECT_GE(sched.waits, 20);
}

TEST(GreenThreads, TheSchedulersDeadlinesBecomeReadTimeouts) {
    tiny_scheduler sched;
    std::error_code ec;
    bool usable = true;
    sched.spawn([&] {
        config cfg = unix_config();
        cfg.read_timeout = milliseconds(200);
        connection c(cfg);
        results r;
        c.query("SELECT SLEEP(3)", r, ec);
        usable = c.is_open();
    });
    auto t0 = clock::now();
    sched.run();
    EXPECT_LT(clock::now() - t0, milliseconds(1500));
    EXPECT_EQ(ec, make_error_code(errc::timeout));
    EXPECT_FALSE(usable) << "a timed-out read leaves the stream mid-response: closed";
}

namespace {
// A hook that waits in poll(2), except that its first wait for a response sleeps
// `delay` and then reports errc::cancelled (a cancellation arriving late); with `twice`,
// its next wait (on the KILL's side connection) reports errc::cancelled at once too.
struct late_cancel_hook : wait_hook {
    std::chrono::milliseconds delay;
    bool armed = true, twice = false;
    explicit late_cancel_hook(std::chrono::milliseconds d, bool again = false) : delay(d), twice(again) {}
    std::error_code wait(int fd, unsigned events, clock::time_point deadline) override {
        if (armed && (events & wait_for::read)) {
            armed = false;
            std::this_thread::sleep_for(delay);
            return make_error_code(errc::cancelled);
        }
        if (!armed && twice) {
            twice = false;
            return make_error_code(errc::cancelled);
        }
        int ms = -1;
        if (deadline != clock::time_point::max())
            ms = static_cast<int>(std::max<long long>(
                0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count()));
        pollfd p{fd, static_cast<short>(events & wait_for::read ? POLLIN : POLLOUT), 0};
        int r = ::poll(&p, 1, ms);
        return r == 0 ? make_error_code(errc::timeout) : std::error_code();
    }
};
}  // namespace

TEST(HookCancel, ABlockingCommandThatCompletedBeforeTheKillKeepsItsRealOutcome) {
    connection c(tcp_config());
    const std::string t = unique_table("hook_cancel");
    c.query("CREATE TABLE " + t + " (id INT)");
    late_cancel_hook hook(std::chrono::milliseconds(200));
    {
        scoped_wait_hook scope(&hook);
        auto r = c.query("INSERT INTO " + t + " VALUES (1), (2)");  // committed before the cancel
        EXPECT_EQ(r.affected_rows(), 2u);
    }
    EXPECT_FALSE(hook.armed) << "the cancellation did happen";
    EXPECT_EQ(c.query("SELECT COUNT(*) FROM " + t).row(0)[0].as<int>(), 2);
    // Interrupted by the KILL: cancelled, as before, and the connection usable.
    late_cancel_hook early(std::chrono::milliseconds(50));
    {
        scoped_wait_hook scope(&early);
        try {
            c.query("SELECT SLEEP(5)");
            FAIL() << "the sleep was not cancelled";
        } catch (const error& e) {
            EXPECT_EQ(e.code(), make_error_code(errc::cancelled)) << e.what();
            EXPECT_TRUE(e.connection_usable());
        }
    }
    EXPECT_EQ(c.query("SELECT 7").row(0)[0].as<int>(), 7);
    c.query("DROP TABLE " + t);
}

TEST(HookCancel, ASecondCancellationClosesTheConnection) {
    connection c(tcp_config());
    late_cancel_hook hook(std::chrono::milliseconds(50), true);
    scoped_wait_hook scope(&hook);
    const auto t0 = clock::now();
    try {
        c.query("SELECT SLEEP(5)");
        FAIL() << "the sleep was not cancelled";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::cancelled)) << e.what();
        EXPECT_FALSE(e.connection_usable());
        EXPECT_NE(std::string(e.what()).find("interrupted again"), std::string::npos) << e.what();
    }
    EXPECT_LT(clock::now() - t0, milliseconds(1500));
    EXPECT_FALSE(hook.twice) << "the second cancellation did happen";
    EXPECT_FALSE(c.is_open());
}

TEST(HookCancel, ACancellationTheServerDoesNotEndGivesUpAtTheCancelTimeout) {
    relay r(relay::mode::stalling);  // the KILL's side connection is never answered
    config cfg = r.through();
    cfg.cancel_timeout = milliseconds(600);
    connection c(cfg);
    late_cancel_hook hook(milliseconds(100));
    scoped_wait_hook scope(&hook);
    const auto t0 = clock::now();
    try {
        c.query("SELECT SLEEP(5)");
        FAIL() << "the sleep was not cancelled";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::cancelled)) << e.what();
        EXPECT_NE(std::string(e.what()).find("cancel timeout"), std::string::npos) << e.what();
        EXPECT_FALSE(e.connection_usable());
    }
    const auto took = clock::now() - t0;
    EXPECT_GE(took, milliseconds(650));
    EXPECT_LT(took, milliseconds(2600));
    EXPECT_FALSE(c.is_open());
}
