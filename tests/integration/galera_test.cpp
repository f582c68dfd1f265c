// Failover on the 3-node Galera cluster of scripts/galera (scripts/test starts it and runs
// this binary on its own): 16 clients run transactions through a pool over the three nodes
// while one node is SIGKILLed and later restarted. Nothing acknowledged may be lost, every
// failure must be classified, and the survivors must take new transactions within a second
// of the cluster evicting the dead node. A node that is not synced gets no connections.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ambisql/ambisql.hpp"
#include "ambisql/async_pool.hpp"
#include "ambisql/pool.hpp"
#include "ambisql/retry.hpp"
#include "galera_env.hpp"

namespace ambisql {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

struct cluster : galera::cluster_env {
    cluster() : cluster_env(from_environment()) {
        if (!present())
            ADD_FAILURE() << "AMBISQL_GALERA_PORTS / AMBISQL_GALERA_SCRIPT not set: run scripts/galera start, "
                             "eval \"$(scripts/galera env)\"";
    }
    config node(int i) const {  // 0-based
        config c;
        c.host = hosts.at(i);
        c.port = ports.at(i);
        c.user = "ambisql";
        c.password = "ambisql-pw";
        c.database = "ambisql_test";
        c.ssl = ssl_mode::disabled;
        c.connect_timeout = 3000ms;
        return c;
    }
    config all(host_mode mode) const {
        config c = node(0);
        for (std::size_t i = 0; i < ports.size(); ++i) c.hosts.push_back({hosts[i], ports[i]});
        c.hosts_mode = mode;
        c.galera_check = true;
        return c;
    }
    void run(const std::string& args) const {
        std::string cmd = script + " " + args + " >/dev/null 2>&1";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
    std::int64_t status(int i, const std::string& var) const {
        connection c(node(i));
        auto r = c.query("SHOW STATUS LIKE '" + var + "'");
        return std::stoll(std::string(r.row(0)[1].get_text()));
    }
};

TEST(Galera, ANodeThatIsNotSyncedGetsNoNewConnections) {
    cluster g;
    ASSERT_EQ(g.ports.size(), 3u);
    connection admin(g.node(0));
    admin.query("SET GLOBAL wsrep_desync = ON");
    for (int i = 0; i < 50 && g.status(0, "wsrep_local_state") == 4; ++i) std::this_thread::sleep_for(20ms);
    ASSERT_NE(g.status(0, "wsrep_local_state"), 4) << "node 1 did not leave Synced";
    for (int k = 0; k < 5; ++k) {
        connection c(g.all(host_mode::sequential));  // node 1 is first in line
        EXPECT_NE(c.query("SELECT @@port").row(0)[0].as<std::int64_t>(), g.ports[0]);
    }
    // A pooled connection to node 1 made while it was synced is not handed out once it is not.
    pool_config pc;
    pc.connection = g.node(0);
    pc.connection.galera_check = true;
    pc.connection.hosts = {{g.hosts[0], g.ports[0]}, {g.hosts[1], g.ports[1]}};
    pc.limits.ping_after_idle = 0ms;
    admin.query("SET GLOBAL wsrep_desync = OFF");
    for (int i = 0; i < 100 && g.status(0, "wsrep_local_state") != 4; ++i) std::this_thread::sleep_for(20ms);
    std::this_thread::sleep_for(1100ms);  // (node 1 off this process's deny list again)
    pool p(pc);
    EXPECT_EQ(p.acquire()->query("SELECT @@port").row(0)[0].as<std::int64_t>(), g.ports[0]);
    admin.query("SET GLOBAL wsrep_desync = ON");
    for (int i = 0; i < 50 && g.status(0, "wsrep_local_state") == 4; ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(p.acquire()->query("SELECT @@port").row(0)[0].as<std::int64_t>(), g.ports[1])
        << "the idle connection to the desynced node was checked and replaced";
    config only_desynced = g.node(0);
    only_desynced.galera_check = true;
    try {
        connection c(only_desynced);
        ADD_FAILURE() << "connected to a desynced node with the Galera check on";
    } catch (const error& e) {
        EXPECT_NE(std::string(e.what()).find("not synced"), std::string::npos) << e.what();
    }
    admin.query("SET GLOBAL wsrep_desync = OFF");
    for (int i = 0; i < 100 && g.status(0, "wsrep_local_state") != 4; ++i) std::this_thread::sleep_for(20ms);
    config sync_wait = only_desynced;
    sync_wait.wsrep_sync_wait = 1;
    connection c(sync_wait);  // synced again: accepted, with causal reads
    EXPECT_EQ(c.query("SELECT @@wsrep_sync_wait").row(0)[0].as<std::int64_t>(), 1);
}

// What the clients saw.
struct tally {
    std::mutex m;
    std::vector<std::int64_t> acked, unknown;
    std::vector<clock::time_point> commits;
    std::atomic<int> fatal{0}, retried{0}, unknown_failures{0}, gave_up{0}, done{0};
    void count(failure_class k) {
        if (k == failure_class::fatal) ++fatal;
        if (k == failure_class::retriable) ++retried;
        if (k == failure_class::outcome_unknown) ++unknown_failures;
    }
    void ack(std::int64_t key) {
        std::lock_guard lk(m);
        acked.push_back(key);
        commits.push_back(clock::now());
    }
    void lost_track(std::int64_t key) {
        std::lock_guard lk(m);
        unknown.push_back(key);
    }
};

constexpr int clients = 16, per_client = 60;

// A partitioned node answers nothing: the read timeout is what ends its clients' waits.
std::chrono::milliseconds load_read_timeout = 20000ms;

config load_config(const cluster& g) {
    config c = g.all(host_mode::load_balance);
    c.read_timeout = load_read_timeout;
    return c;
}
pool_config load_pool(const cluster& g) {
    pool_config pc;
    pc.connection = load_config(g);
    pc.limits.max_size = clients;
    pc.limits.acquire_timeout = 30000ms;
    pc.limits.ping_after_idle = 0ms;  // a connection to the dead node is found out at once
    return pc;
}

// 16 threads, transact() through a pool.
void thread_clients(const cluster& g, const std::string& table, tally& t) {
    pool p(load_pool(g));
    retry_policy pol;
    pol.max_attempts = 20;
    pol.on_failure = [&](const error&, failure_class k, int) { t.count(k); };
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            for (int i = 0; i < per_client; ++i) {
                const std::int64_t key = std::int64_t(c) * 1000000 + i;
                try {
                    transact(
                        p, [&](connection& conn) { conn.query("INSERT INTO " + table + " VALUES (" + std::to_string(key) + ", 0)"); },
                        pol);
                    t.ack(key);
                } catch (const commit_outcome_unknown&) {
                    t.lost_track(key);
                } catch (const error& e) {
                    ++t.gave_up;
                    ADD_FAILURE() << "client " << c << " gave up: " << e.what();
                }
                ++t.done;
                std::this_thread::sleep_for(2ms);
            }
        });
    }
    for (auto& th : threads) th.join();
}

// 16 coroutines on one thread through an async_pool, each transaction re-run by the
// same classify() rule transact() uses.
void coroutine_clients(const cluster& g, const std::string& table, tally& t) {
    asio::io_context io;
    async_pool p(io.get_executor(), load_pool(g));
    for (int c = 0; c < clients; ++c) {
        asio::co_spawn(
            io,
            [&, c]() -> asio::awaitable<void> {
                for (int i = 0; i < per_client; ++i) {
                    const std::int64_t key = std::int64_t(c) * 1000000 + i;
                    for (int attempt = 0;; ++attempt) {
                        failure_context ctx{false, false, false};
                        boost::system::error_code ec;
                        pooled_async_connection conn;
                        try {
                            conn = co_await p.async_acquire(asio::use_awaitable);
                            co_await conn->async_query("BEGIN", asio::use_awaitable);
                            ctx.statements_sent = ctx.in_transaction = true;
                            co_await conn->async_query("INSERT INTO " + table + " VALUES (" + std::to_string(key) + ", 1)",
                                                       asio::use_awaitable);
                            ctx.commit_sent = true;
                            co_await conn->async_query("COMMIT", asio::use_awaitable);
                            t.ack(key);
                            break;
                        } catch (const boost::system::system_error&) {
                        }
                        diagnostics d = conn ? conn->error() : diagnostics{};
                        if (!d) {  // the acquire itself failed (no host): a lost connection, nothing sent
                            d.kind = error_kind::network;
                            d.code = make_error_code(errc::connect_failed);
                        }
                        const failure_class k = classify(d, ctx);
                        t.count(k);
                        if (conn) conn.discard();
                        if (k == failure_class::outcome_unknown) {
                            t.lost_track(key);
                            break;
                        }
                        if (k == failure_class::fatal || attempt >= 20) {
                            ++t.gave_up;
                            ADD_FAILURE() << "coroutine " << c << " gave up: " << d.to_string();
                            break;
                        }
                        asio::steady_timer wait(io, std::chrono::milliseconds(20 * (attempt + 1)));
                        co_await wait.async_wait(asio::use_awaitable);
                    }
                    ++t.done;
                    asio::steady_timer pause(io, 2ms);
                    co_await pause.async_wait(asio::use_awaitable);
                }
            },
            asio::detached);
    }
    io.run();
}

// `partition`: node 3's link is taken down (no FIN, no RST; the process runs on) instead of
// node 2 being SIGKILLed, and brought back after the load.
void failover_under_load(bool coroutines, bool partition = false) {
    cluster g;
    ASSERT_EQ(g.ports.size(), 3u);
    if (partition && !g.no_partition.empty()) GTEST_SKIP() << "no partition scenario here: " << g.no_partition;
    load_read_timeout = partition ? 8000ms : 20000ms;
    const std::string table = "galera_load_" + std::to_string(::getpid()) + (coroutines ? "_co" : "_th") +
                              (partition ? "_part" : "");
    {
        connection admin(g.node(0));
        admin.query("DROP TABLE IF EXISTS " + table);
        admin.query("CREATE TABLE " + table + " (k BIGINT PRIMARY KEY, via INT) ENGINE=InnoDB");
    }
    tally t;
    std::thread load([&] { coroutines ? coroutine_clients(g, table, t) : thread_clients(g, table, t); });
    // SIGKILL node 2 (or cut node 3 off) a third of the way in; note when the survivors evict it.
    while (t.done.load() < clients * per_client / 3) std::this_thread::sleep_for(5ms);
    const auto killed_at = clock::now();
    g.run(partition ? "partition 3" : "kill 2");
    clock::time_point evicted_at{};
    for (int i = 0; i < 500 && evicted_at == clock::time_point{}; ++i) {
        try {
            if (g.status(0, "wsrep_cluster_size") == 2) evicted_at = clock::now();
        } catch (const error&) {
        }
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_NE(evicted_at, clock::time_point{}) << "the dead node was never evicted";
    load.join();
    g.run(partition ? "heal 3" : "start-node 2");  // it rejoins (state transfer) and must hold every acknowledged key too

    clock::time_point first_after{};
    for (auto c : t.commits)
        if (c >= evicted_at && (first_after == clock::time_point{} || c < first_after)) first_after = c;
    ASSERT_NE(first_after, clock::time_point{}) << "no commit after the eviction";
    const double resume = std::chrono::duration<double>(first_after - evicted_at).count();
    EXPECT_LT(resume, 1.0) << "first commit " << resume << " s after the eviction";
    EXPECT_EQ(t.fatal.load(), 0) << "every failure is retriable or of unknown outcome";
    EXPECT_EQ(t.gave_up.load(), 0);
    EXPECT_EQ(t.acked.size() + t.unknown.size(), std::size_t(clients * per_client));
    for (int n = 0; n < 3; ++n) {
        connection c(g.node(n));
        c.query("SET SESSION wsrep_sync_wait = 1");
        auto r = c.query("SELECT k FROM " + table);
        std::set<std::int64_t> present;
        for (std::size_t i = 0; i < r.row_count(); ++i) present.insert(r.row(i)[0].as<std::int64_t>());
        std::size_t lost = 0;
        for (auto k : t.acked) lost += present.count(k) == 0;
        EXPECT_EQ(lost, 0u) << "node " << n + 1 << " lacks acknowledged keys";
    }
    std::printf("galera %s (%s): %zu acknowledged, %zu of unknown outcome; failures: %d retried, %d of "
                "unknown outcome, %d fatal; eviction %.2f s after the kill; first commit %.3f s after it\n",
                partition ? "partition" : "failover", coroutines ? "16 coroutines on one thread" : "16 threads",
                t.acked.size(), t.unknown.size(),
                t.retried.load(), t.unknown_failures.load(), t.fatal.load(),
                std::chrono::duration<double>(evicted_at - killed_at).count(), resume);
    connection admin(g.node(0));
    admin.query("DROP TABLE " + table);
}

TEST(Galera, NothingAcknowledgedIsLostWhenANodeDiesUnderLoadOfThreads) { failover_under_load(false); }

TEST(Galera, NothingAcknowledgedIsLostWhenANodeDiesUnderLoadOfCoroutines) { failover_under_load(true); }

TEST(Galera, NothingAcknowledgedIsLostWhenANodeIsPartitionedUnderLoad) { failover_under_load(false, true); }

}  // namespace
}  // namespace ambisql
