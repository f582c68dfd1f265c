// The poll()/fileno() API driven by a raw epoll loop on one thread.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

namespace {

// Drives connections through one epoll instance. `next(i)` is called whenever
// connection i finished an operation; it starts the next one and returns true, or
// returns false when that connection is finished. Deadlines are honoured.
void run_epoll(std::vector<nb_connection>& conns, const std::function<bool(std::size_t)>& next) {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    std::vector<clock::time_point> deadline(conns.size(), clock::time_point::max());
    std::vector<int> armed_fd(conns.size(), -1);
    std::size_t left = conns.size();
    auto advance = [&](std::size_t i) {
        for (;;) {
            auto w = conns[i].poll();
            if (!w.done()) {
                deadline[i] = w.deadline();
                epoll_event ev{};
                ev.events = (w.events() & wait_for::read ? EPOLLIN : EPOLLOUT) | EPOLLONESHOT;
                ev.data.u64 = i;
                int fd = conns[i].fileno();
                if (armed_fd[i] != fd) {
                    if (armed_fd[i] >= 0) ::epoll_ctl(ep, EPOLL_CTL_DEL, armed_fd[i], nullptr);
                    ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
                    armed_fd[i] = fd;
                } else {
                    ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev), 0);
                }
                return;
            }
            deadline[i] = clock::time_point::max();
            if (!next(i)) {
                if (armed_fd[i] >= 0) ::epoll_ctl(ep, EPOLL_CTL_DEL, armed_fd[i], nullptr);
                armed_fd[i] = -1;
                --left;
                return;
            }
        }
    };
    for (std::size_t i = 0; i < conns.size(); ++i) advance(i);
    epoll_event events[128];
    while (left > 0) {
        auto soonest = *std::min_element(deadline.begin(), deadline.end());
        int ms = 1000;
        if (soonest != clock::time_point::max())
            ms = std::max<int>(0, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(soonest - clock::now()).count()) + 1);
        int k = ::epoll_wait(ep, events, 128, std::min(ms, 1000));
        for (int j = 0; j < k; ++j) advance(events[j].data.u64);
        auto now = clock::now();
        for (std::size_t i = 0; i < conns.size(); ++i)
            if (deadline[i] <= now) advance(i);
    }
    ::close(ep);
}

// CPU time of the calling thread.
std::chrono::microseconds thread_cpu() {
    rusage u{};
    ::getrusage(RUSAGE_THREAD, &u);
    return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

TEST(Poll, TwoHundredSleepsOnOneEpollLoopFinishInUnderFiveSeconds) {
    constexpr std::size_t n = 200;
    std::vector<nb_connection> conns(n);
    std::vector<int> step(n, 0);
    std::vector<std::int64_t> got(n, -1);
    for (std::size_t i = 0; i < n; ++i) {
        conns[i].set_config(unix_config());
        conns[i].start_connect();
    }
    auto t0 = std::chrono::steady_clock::now();
    run_epoll(conns, [&](std::size_t i) {
        conns[i].check();
        if (step[i]++ == 0) {
            conns[i].start_query("SELECT SLEEP(0.5), ?", static_cast<std::int64_t>(i));
            return true;
        }
        got[i] = conns[i].result().row(0)[1].as<std::int64_t>();
        return false;
    });
    auto elapsed = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(elapsed, std::chrono::seconds(5)) << "serialized, 200 sleeps would take 100 s";
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(got[i], static_cast<std::int64_t>(i));
}

// A unix socket's full listen queue (EAGAIN: nothing in progress to wait on): the
// connection's fileno() is a timer until the connect is made again; the loop never spins.
TEST(Poll, AUnixSocketWithAFullListenQueueIsTriedAgainOnATimer) {
    relay queue(relay::mode::queue_full);
    std::vector<nb_connection> conns(1);
    conns[0].set_config(queue.through());
    conns[0].start_connect();
    int steps = 0;
    std::int64_t got = 0;
    const auto cpu0 = thread_cpu();
    const auto t0 = std::chrono::steady_clock::now();
    run_epoll(conns, [&](std::size_t) {
        conns[0].check();
        if (steps++ == 0) {
            conns[0].start_query("SELECT 8");
            return true;
        }
        got = conns[0].result().row(0)[0].as<std::int64_t>();
        return false;
    });
    EXPECT_GE(std::chrono::steady_clock::now() - t0, relay::queue_full_for - std::chrono::milliseconds(20));
    EXPECT_LT(thread_cpu() - cpu0, std::chrono::milliseconds(100)) << "the loop spun while the queue was full";
    EXPECT_EQ(got, 8);
}

TEST(Poll, HundredConnectionsEachSeeOnlyTheirOwnResults) {
    constexpr std::size_t n = 100, queries = 20;
    std::vector<nb_connection> conns(n);
    std::vector<std::size_t> done(n, 0);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < n; ++i) {
        config cfg = tcp_config();
        if (i % 4 == 0) cfg.ssl = ssl_mode::required;  // TLS through the same API
        conns[i].set_config(cfg);
        conns[i].start_connect();
    }
    run_epoll(conns, [&](std::size_t i) {
        conns[i].check();
        if (done[i] > 0) {
            auto row = conns[i].result().row(0);
            if (row[0].as<std::uint64_t>() != i || row[1].as<std::uint64_t>() != done[i] - 1) ++mismatches;
        } else if (i % 4 == 0) {
            EXPECT_TRUE(conns[i].tls_active());
        }
        if (done[i] == queries) return false;
        conns[i].start_query("SELECT ?, ?, REPEAT('x', ?)", i, done[i], (i * 37 + done[i]) % 3000);
        ++done[i];
        return true;
    });
    EXPECT_EQ(mismatches, 0u);
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(done[i], queries);
}

TEST(Poll, StreamingInBatches) {
    std::vector<nb_connection> conns(1);
    conns[0].set_config(unix_config());
    conns[0].start_connect();
    int step = 0;
    std::uint64_t rows = 0, sum = 0, batches = 0;
    run_epoll(conns, [&](std::size_t) {
        auto& c = conns[0];
        c.check();
        switch (step) {
            case 0:
                step = 1;
                c.start_stream("SELECT seq FROM seq_1_to_50000 WHERE seq <= ?", 50000);
                return true;
            case 1:
                EXPECT_EQ(c.stream_columns().size(), 1u);
                step = 2;
                c.start_read_rows();
                return true;
            default:
                if (c.batch_size() > 0) ++batches;
                for (std::size_t k = 0; k < c.batch_size(); ++k) {
                    sum += c.batch_row(k)[0].as<std::uint64_t>();
                    ++rows;
                }
                if (c.rows_pending()) {
                    c.start_read_rows();
                    return true;
                }
                return false;
        }
    });
    EXPECT_EQ(rows, 50000u);
    EXPECT_EQ(sum, 50000ull * 50001 / 2);
    EXPECT_GT(batches, 1u) << "rows arrived incrementally";
}

TEST(Poll, SecondOperationWhileBusyIsRefusedAndTheFirstCompletes) {
    std::vector<nb_connection> conns(1);
    conns[0].set_config(tcp_config());
    conns[0].start_connect();
    int step = 0;
    run_epoll(conns, [&](std::size_t) {
        auto& c = conns[0];
        c.check();
        if (step++ == 0) {
            c.start_query("SELECT SLEEP(0.2), 11");
            try {
                c.start_ping();
                ADD_FAILURE() << "a second operation started";
            } catch (const error& e) {
                EXPECT_EQ(e.code(), make_error_code(errc::operation_in_progress));
            }
            return true;
        }
        EXPECT_EQ(c.result().row(0)[1].as<int>(), 11);
        return false;
    });
}

TEST(Poll, ReadTimeoutAndServerErrors) {
    std::vector<nb_connection> conns(1);
    config cfg = tcp_config();
    cfg.read_timeout = std::chrono::milliseconds(300);
    conns[0].set_config(cfg);
    conns[0].start_connect();
    int step = 0;
    auto t0 = std::chrono::steady_clock::now();
    run_epoll(conns, [&](std::size_t) {
        auto& c = conns[0];
        switch (step++) {
            case 0:
                c.check();
                c.start_query("SELECT * FROM no_such_table_poll");
                return true;
            case 1:
                EXPECT_EQ(c.error().server_code, 1146);
                EXPECT_TRUE(c.error().connection_usable);
                t0 = std::chrono::steady_clock::now();
                c.start_query("SELECT SLEEP(3)");
                return true;
            default:
                EXPECT_EQ(c.error().code, make_error_code(errc::timeout));
                EXPECT_FALSE(c.is_open());
                return false;
        }
    });
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(Poll, ConnectFailuresAreReportedByPoll) {
    nb_connection c;
    config cfg = tcp_config();
    cfg.port = 1;
    c.set_config(cfg);
    c.start_connect();
    for (int i = 0; i < 100 && !c.poll().done(); ++i) ::usleep(10000);
    EXPECT_EQ(c.error().kind, error_kind::network);
    EXPECT_EQ(c.error().code, make_error_code(errc::connect_failed));
}

TEST(Poll, PreparedStatementsOnAnEpollLoop) {
    std::vector<nb_connection> conns;
    for (int i = 0; i < 20; ++i) conns.emplace_back(i % 2 ? tcp_config() : unix_config());
    std::vector<int> step(conns.size(), 0);
    std::vector<std::int64_t> sum(conns.size(), 0);
    std::size_t failures = 0;
    run_epoll(conns, [&](std::size_t i) {
        auto& c = conns[i];
        if (!c.ok()) {
            ++failures;
            return false;
        }
        int s = step[i]++;
        if (s >= 2 && s <= 50) sum[i] += c.result().row(0)[0].get_int();
        if (s == 0) {
            c.start_connect();
        } else if (s < 50) {
            c.start_execute("SELECT ? + SLEEP(0.001) * 0", static_cast<std::int64_t>(i * 1000 + s));
        } else if (s == 50) {
            c.start_prepare("SELECT ? * 2");
        } else if (s == 51) {
            c.start_execute_args(c.prepared(), std::vector<sql_arg>{sql_arg(21)});
        } else {
            EXPECT_EQ(c.result().row(0)[0].get_int(), 42);
            return false;
        }
        return true;
    });
    EXPECT_EQ(failures, 0u);
    for (std::size_t i = 0; i < conns.size(); ++i) {
        std::int64_t expect = 0;
        for (int s = 1; s < 50; ++s) expect += static_cast<std::int64_t>(i * 1000 + s);
        EXPECT_EQ(sum[i], expect) << i;
    }
}

namespace {
// Polls `c` to done, waiting with poll(2) on whatever fileno() names each time.
void poll_to_done(nb_connection& c) {
    for (;;) {
        auto w = c.poll();
        if (w.done()) return;
        pollfd p{c.fileno(), static_cast<short>(w.events() & wait_for::read ? POLLIN : POLLOUT), 0};
        int ms = -1;
        if (w.deadline() != clock::time_point::max())
            ms = static_cast<int>(std::max<long long>(
                0, std::chrono::duration_cast<std::chrono::milliseconds>(w.deadline() - clock::now()).count() + 1));
        ::poll(&p, 1, ms);
    }
}

std::size_t running(const std::string& marker) {
    connection admin(tcp_config());
    return admin
        .query("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE ? AND id <> CONNECTION_ID()",
               "%" + marker + "%")
        .row(0)[0]
        .as<std::size_t>();
}
}  // namespace

TEST(PollCancel, ACancelledSleepIsKilledAndTheConnectionStaysUsable) {
    nb_connection c(tcp_config());
    c.start_connect();
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
    const std::string sql = "SELECT SLEEP(10) /* poll-cancel */";
    c.start_query(sql);
    auto t0 = clock::now();
    ASSERT_FALSE(c.poll().done());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c.cancel();
    poll_to_done(c);
    EXPECT_LT(clock::now() - t0, std::chrono::seconds(2));
    EXPECT_EQ(c.error().code, make_error_code(errc::cancelled)) << c.error().message;
    EXPECT_TRUE(c.error().connection_usable);
    EXPECT_TRUE(c.is_open());
    EXPECT_EQ(running("poll-cancel"), 0u);
    c.start_query("SELECT 'next'");
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c.result().row(0)[0].as<std::string_view>(), "next");
    c.cancel();  // nothing running: nothing happens
    EXPECT_TRUE(c.poll().done());
    EXPECT_TRUE(c.ok());
}

TEST(PollCancel, ACommandThatCompletedBeforeTheKillKeepsItsRealOutcome) {
    nb_connection c(tcp_config());
    c.start_connect();
    poll_to_done(c);
    const std::string t = unique_table("cancel_late");
    c.start_query("CREATE TABLE " + t + " (id INT)");
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
    c.start_query("INSERT INTO " + t + " VALUES (1), (2)");
    ASSERT_FALSE(c.poll().done());  // sent
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // committed, answered, not read
    c.cancel();
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << "the INSERT committed: reported as done, not cancelled: " << c.error().message;
    EXPECT_EQ(c.result().affected_rows(), 2u);
    connection check(tcp_config());
    EXPECT_EQ(check.query("SELECT COUNT(*) FROM " + t).row(0)[0].as<int>(), 2);
    check.query("DROP TABLE " + t);
}

TEST(PollCancel, AKillThatLandsBeforeTheStatementIsSentAgain) {
    nb_connection c(tcp_config());
    c.start_connect();
    poll_to_done(c);
    const std::string sql = "SELECT SLEEP(5) /* early-kill */";
    c.start_query(sql);
    // Cancelled before the request went out: the first KILL reaches an idle connection
    // and is lost; the repeat interrupts the statement.
    c.cancel();
    auto t0 = clock::now();
    poll_to_done(c);
    EXPECT_LT(clock::now() - t0, std::chrono::seconds(3)) << "the statement ran to its end";
    EXPECT_EQ(c.error().code, make_error_code(errc::cancelled)) << c.error().message;
    EXPECT_TRUE(c.is_open());
    EXPECT_EQ(running("early-kill"), 0u);
}

// A statement that reaches the server late (a server too busy to read it: 800 ms here)
// loses every KILL sent before it began; the cancellation ends within one repeat of its
// start. With repeats at doubling intervals (200, 400, 800 ms) the one after an 800 ms
// start came at 1.5 s: a delay on the server's side became up to twice as long.
TEST(PollCancel, AStatementThatStartsLateIsKilledWithinOneRepeatOfItsStart) {
    relay late(relay::mode::late);
    config cfg = late.through();
    cfg.compress = false;  // (the relay finds the statement's marker in plain bytes)
    nb_connection c(cfg);
    c.start_connect();
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
    const std::string sql = "SELECT SLEEP(10) /* late */";
    const auto t0 = clock::now();
    c.start_query(sql);
    ASSERT_FALSE(c.poll().done());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c.cancel();
    poll_to_done(c);
    const auto took = clock::now() - t0;
    EXPECT_EQ(c.error().code, make_error_code(errc::cancelled)) << c.error().message;
    EXPECT_TRUE(c.is_open());
    EXPECT_GE(took, relay::late_by);
    // The repeat interval (200 ms), and 150 ms for the KILL's and the answer's trips.
    EXPECT_LT(took, relay::late_by + std::chrono::milliseconds(350))
        << "the KILL was not repeated within its interval once the statement had begun";
    c.start_query("SELECT 'next'");
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
}

TEST(PollCancel, ASecondCancelWhileTheKillRunsClosesTheConnectionAtOnce) {
    nb_connection c(tcp_config());
    c.start_connect();
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
    c.start_query("SELECT SLEEP(10) /* cancel-twice */");
    ASSERT_FALSE(c.poll().done());
    c.cancel();
    ASSERT_FALSE(c.poll().done());  // the KILL's side connection is on its way
    const auto t0 = clock::now();
    c.cancel();  // the rule: a second interruption closes instead of waiting on
    EXPECT_TRUE(c.poll().done());
    EXPECT_LT(clock::now() - t0, std::chrono::milliseconds(500));
    EXPECT_EQ(c.error().code, make_error_code(errc::cancelled)) << c.error().message;
    EXPECT_FALSE(c.error().connection_usable);
    EXPECT_NE(c.error().message.find("interrupted again"), std::string::npos) << c.error().message;
    EXPECT_FALSE(c.is_open());
}

TEST(PollCancel, ACancellationTheServerDoesNotEndGivesUpAtTheCancelTimeout) {
    // The KILL's side connection is accepted and never answered (the relay stalls it):
    // without the cancel timeout the caller would wait for the side connection's own
    // 5 s connect timeout, or forever while the KILL kept being retried.
    relay r(relay::mode::stalling);
    config cfg = r.through();
    cfg.cancel_timeout = std::chrono::milliseconds(600);
    nb_connection c(cfg);
    c.start_connect();
    poll_to_done(c);
    ASSERT_TRUE(c.ok()) << c.error().message;
    c.start_query("SELECT SLEEP(5) /* give-up */");
    ASSERT_FALSE(c.poll().done());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto t0 = clock::now();
    c.cancel();
    poll_to_done(c);
    const auto took = clock::now() - t0;
    EXPECT_GE(took, std::chrono::milliseconds(550));
    EXPECT_LT(took, std::chrono::milliseconds(2500));
    EXPECT_EQ(c.error().code, make_error_code(errc::cancelled)) << c.error().message;
    EXPECT_NE(c.error().message.find("cancel timeout"), std::string::npos) << c.error().message;
    EXPECT_FALSE(c.error().connection_usable);
    EXPECT_FALSE(c.is_open());
}

TEST(PollCancel, AKillThatCannotBeDeliveredClosesTheConnection) {
    connection admin(tcp_config());
    admin.query("CREATE USER IF NOT EXISTS 'ambisql_one'@'%' IDENTIFIED BY ? WITH MAX_USER_CONNECTIONS 1",
                env().password);
    admin.query("CREATE USER IF NOT EXISTS 'ambisql_one'@'localhost' IDENTIFIED BY ? WITH MAX_USER_CONNECTIONS 1",
                env().password);
    admin.query("GRANT ALL ON *.* TO 'ambisql_one'@'%'");
    admin.query("GRANT ALL ON *.* TO 'ambisql_one'@'localhost'");
    nb_connection c(account("ambisql_one"));
    // (A run just before this one may still hold the account's one connection: the server
    // ends a closed connection's session a moment after its client has gone.)
    for (const auto until = clock::now() + std::chrono::seconds(3);;) {
        c.start_connect();
        poll_to_done(c);
        if (c.ok() || c.error().server_code != 1226 || clock::now() > until) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(c.ok()) << c.error().message;
    c.start_query("SELECT SLEEP(3) /* undeliverable */");
    ASSERT_FALSE(c.poll().done());
    c.cancel();  // the side connection is refused: one connection per user
    auto t0 = clock::now();
    poll_to_done(c);
    EXPECT_LT(clock::now() - t0, std::chrono::seconds(2));
    EXPECT_EQ(c.error().code, make_error_code(errc::cancelled));
    EXPECT_FALSE(c.error().connection_usable);
    EXPECT_NE(c.error().message.find("could not be killed"), std::string::npos) << c.error().message;
    EXPECT_FALSE(c.is_open());
}
