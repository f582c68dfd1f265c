// galera/failover: the scale of a control plane on the local 3-node Galera cluster
// (scripts/galera; scripts/bench starts it for this workload). 60 pools of 5 connections
// (three controllers of twenty services), load-balance over the three nodes with the
// Galera check, 300 coroutines each committing a transaction every 400 ms; after a steady
// stretch node 2 is SIGKILLed, later restarted. Run twice: with the pool's storm bounds off
// (max_connecting 0, connect_jitter 0: every acquirer reconnects at once) and with its
// defaults. Reported per run: acknowledged commits lost (must be 0), failed transactions by
// classification, the peak of new handshakes per second on the survivors (their
// Connections counter, sampled), the time from the kill until throughput is back at 90% of
// its level before, the time from the restarted node's return until it carries 90% of its
// share of the commits again (pools rebalance as connections reach max_lifetime, 15 s
// here), and client memory per pooled connection.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "ambisql/ambisql.hpp"
#include "ambisql/async_pool.hpp"
#include "ambisql/retry.hpp"
#include "bench.hpp"
#include "galera_env.hpp"

namespace bench {

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr int pools = 60, per_pool = 5;
constexpr auto pause = 400ms;          // between one worker's transactions
constexpr double steady_before = 4.0;  // seconds of steady load measured before the kill
constexpr double restart_after = 6.0;  // the dead node is restarted this long after the kill

struct cluster : ambisql::galera::cluster_env {
    cluster() : cluster_env(from_environment()) {
        if (!present()) throw std::runtime_error("galera/failover needs the cluster: scripts/bench starts it");
    }
    ambisql::config node(int i) const {
        ambisql::config c;
        c.host = hosts.at(static_cast<std::size_t>(i));
        c.port = ports.at(static_cast<std::size_t>(i));
        c.user = "ambisql";
        c.password = "ambisql-pw";
        c.database = "ambisql_test";
        c.ssl = ambisql::ssl_mode::disabled;
        c.connect_timeout = 2000ms;
        return c;
    }
    void run(const std::string& args) const {
        if (std::system((script + " " + args + " >/dev/null 2>&1").c_str()) != 0)
            throw std::runtime_error("scripts/galera " + args + " failed");
    }
};

double rss_kb() {
    std::ifstream f("/proc/self/statm");
    long pages = 0, resident = 0;
    f >> pages >> resident;
    return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1024.0;
}

// Each node's Connections and wsrep_local_commits, sampled every 100 ms on connections of
// the sampler's own (a dead node's sample is missing).
struct sample {
    double t;
    std::int64_t connections[3], commits[3];  // -1: not reachable
    std::int64_t cluster_size;                // node 1's view
};

struct run_result {
    std::size_t acked = 0, unknown = 0, lost = 0;
    int retriable = 0, outcome_unknown = 0, fatal = 0;
    double peak_handshakes = 0, recovery = -1, share = -1, kb_per_connection = 0, rate_before = 0, eviction = -1;
};

run_result run(const cluster& g, bool bounded, const std::string& table) {
    {
        ambisql::connection admin(g.node(0));
        admin.query("DROP TABLE IF EXISTS " + table);
        admin.query("CREATE TABLE " + table + " (k BIGINT PRIMARY KEY, v INT) ENGINE=InnoDB");
    }
    const auto t0 = clk::now();
    auto now = [&] { return std::chrono::duration<double>(clk::now() - t0).count(); };

    std::mutex m;
    std::vector<std::pair<double, std::int64_t>> acks;  // (time, key)
    std::vector<std::int64_t> unknown;
    std::atomic<int> retriable{0}, outcome_unknown{0}, fatal{0}, connected{0};
    std::atomic<bool> stop{false};

    ambisql::pool_config pc;
    pc.connection = g.node(0);
    for (std::size_t i = 0; i < g.ports.size(); ++i) pc.connection.hosts.push_back({g.hosts[i], g.ports[i]});
    pc.connection.hosts_mode = ambisql::host_mode::load_balance;
    pc.connection.galera_check = true;
    pc.connection.read_timeout = 10000ms;
    pc.limits.max_size = per_pool;
    pc.limits.acquire_timeout = 30000ms;
    pc.limits.ping_after_idle = 0ms;  // a connection to the dead node is found out before use
    pc.limits.max_lifetime = 15000ms;
    if (!bounded) {
        pc.limits.max_connecting = 0;
        pc.limits.connect_jitter = 0ms;
    }

    const double rss0 = rss_kb();
    asio::io_context io;
    std::vector<std::unique_ptr<ambisql::async_pool>> ps;
    for (int i = 0; i < pools; ++i) ps.push_back(std::make_unique<ambisql::async_pool>(io.get_executor(), pc));
    for (int w = 0; w < pools * per_pool; ++w) {
        asio::co_spawn(
            io,
            [&, w]() -> asio::awaitable<void> {
                ambisql::async_pool& p = *ps[static_cast<std::size_t>(w / per_pool)];
                bool first = true;
                for (std::int64_t i = 0; !stop.load(); ++i) {
                    const std::int64_t key = std::int64_t(w) * 10000000 + i;
                    for (int attempt = 0;; ++attempt) {
                        ambisql::pooled_async_connection conn;
                        boost::system::error_code ec;
                        std::tie(ec, conn) = co_await p.async_acquire(asio::as_tuple(asio::use_awaitable));
                        if (!ec) {
                            if (first) {
                                first = false;
                                ++connected;
                            }
                            co_await conn->async_query("BEGIN", asio::redirect_error(asio::use_awaitable, ec));
                            if (!ec)
                                co_await conn->async_query("INSERT INTO " + table + " VALUES (" + std::to_string(key) + ", 1)",
                                                           asio::redirect_error(asio::use_awaitable, ec));
                            if (!ec) co_await conn->async_query("COMMIT", asio::redirect_error(asio::use_awaitable, ec));
                            if (!ec) {
                                std::lock_guard lk(m);
                                acks.emplace_back(now(), key);
                                break;
                            }
                        }
                        ambisql::diagnostics d = conn ? conn->error() : ambisql::diagnostics{};
                        if (!d) {  // the acquire failed: nothing was sent
                            d.kind = ambisql::error_kind::network;
                            d.code = ambisql::make_error_code(ambisql::errc::connect_failed);
                        }
                        const auto k = ambisql::classify(d);
                        if (conn) conn.discard();
                        if (k == ambisql::failure_class::outcome_unknown) {
                            ++outcome_unknown;
                            std::lock_guard lk(m);
                            unknown.push_back(key);
                            break;
                        }
                        if (k == ambisql::failure_class::fatal || attempt >= 50) {
                            ++fatal;
                            std::fprintf(stderr, "galera/failover: worker %d gave up: %s\n", w, d.to_string().c_str());
                            break;
                        }
                        ++retriable;
                        asio::steady_timer backoff(io, std::chrono::milliseconds(20 * (attempt + 1)));
                        co_await backoff.async_wait(asio::use_awaitable);
                    }
                    asio::steady_timer wait(io, pause);
                    co_await wait.async_wait(asio::use_awaitable);
                }
            },
            asio::detached);
    }
    std::thread loop([&] { io.run(); });

    // The sampler.
    std::vector<sample> samples;
    std::atomic<bool> sampling{true};
    std::thread sampler([&] {
        std::unique_ptr<ambisql::connection> c[3];
        while (sampling.load()) {
            sample s{now(), {-1, -1, -1}, {-1, -1, -1}, -1};
            for (int n = 0; n < 3; ++n) {
                try {
                    if (!c[n] || !c[n]->is_open()) {
                        auto cfg = g.node(n);
                        cfg.connect_timeout = 200ms;
                        cfg.read_timeout = 500ms;
                        c[n] = std::make_unique<ambisql::connection>(cfg);
                    }
                    auto r = c[n]->query(
                        "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME "
                        "IN ('CONNECTIONS', 'WSREP_LOCAL_COMMITS', 'WSREP_CLUSTER_SIZE')");
                    for (std::size_t i = 0; i < r.row_count(); ++i) {
                        const std::string name(r.row(i)[0].get_text());
                        const std::int64_t v = std::stoll(std::string(r.row(i)[1].get_text()));
                        if (name == "WSREP_CLUSTER_SIZE") {
                            if (n == 0) s.cluster_size = v;
                        } else {
                            (name == "CONNECTIONS" ? s.connections : s.commits)[n] = v;
                        }
                    }
                } catch (const std::exception&) {
                    c[n].reset();
                }
            }
            samples.push_back(s);
            std::this_thread::sleep_for(100ms);
        }
    });

    // Warm: every worker connected, then steady load.
    while (connected.load() < pools * per_pool && now() < 60) std::this_thread::sleep_for(50ms);
    std::size_t open = 0;
    for (auto& p : ps) open += p->stats().total;
    const double kb = (rss_kb() - rss0) / static_cast<double>(std::max<std::size_t>(open, 1));
    std::this_thread::sleep_for(std::chrono::duration<double>(steady_before + 1.0));
    const double killed_at = now();
    g.run("kill 2");
    std::this_thread::sleep_for(std::chrono::duration<double>(restart_after));
    g.run("start-node 2");  // returns once it is synced
    const double back_at = now();
    std::this_thread::sleep_for(25s);  // time for the pools to rebalance (max_lifetime 15 s)
    stop = true;
    loop.join();
    sampling = false;
    sampler.join();
    for (auto& p : ps) p->close();

    run_result r;
    r.kb_per_connection = kb;
    r.retriable = retriable;
    r.outcome_unknown = outcome_unknown;
    r.fatal = fatal;
    r.acked = acks.size();
    r.unknown = unknown.size();
    std::sort(acks.begin(), acks.end());
    // Throughput before the kill, and when it is back at 90% (a trailing 1 s window).
    auto in_window = [&](double from, double to) {
        auto lo = std::lower_bound(acks.begin(), acks.end(), std::make_pair(from, std::int64_t(INT64_MIN)));
        auto hi = std::lower_bound(acks.begin(), acks.end(), std::make_pair(to, std::int64_t(INT64_MIN)));
        return static_cast<double>(hi - lo);
    };
    r.rate_before = in_window(killed_at - steady_before, killed_at) / steady_before;
    for (double t = killed_at + 0.1; t < back_at; t += 0.05) {
        if (in_window(t - 1.0, t) >= 0.9 * r.rate_before && t - 1.0 >= killed_at) {
            r.recovery = t - killed_at;
            break;
        }
    }
    // The survivors' new handshakes (nodes 1 and 3) per second, over each sampling
    // interval (~100 ms: a 1 s window would hide a burst) from the kill to the restart.
    for (std::size_t i = 1; i < samples.size(); ++i) {
        const sample& a = samples[i - 1];
        const sample& b = samples[i];
        if (a.t < killed_at || b.t > back_at) continue;
        if (r.eviction < 0 && b.cluster_size == 2) r.eviction = b.t - killed_at;
        std::int64_t n = 0;
        bool have = true;
        for (int node : {0, 2}) {
            if (a.connections[node] < 0 || b.connections[node] < 0) have = false;
            n += b.connections[node] - a.connections[node];
        }
        if (have && b.t > a.t) r.peak_handshakes = std::max(r.peak_handshakes, static_cast<double>(n) / (b.t - a.t));
    }
    // The restarted node's share of commits (over 2 s windows) back at 90% of a third.
    for (std::size_t i = 0; i < samples.size() && r.share < 0; ++i) {
        if (samples[i].t < back_at) continue;
        for (std::size_t j = i; j > 0; --j) {
            if (samples[i].t - samples[j - 1].t < 2.0) continue;
            const sample& a = samples[j - 1];
            const sample& b = samples[i];
            if (a.commits[1] < 0 || a.t < back_at) break;
            std::int64_t all = 0;
            bool have = true;
            for (int node = 0; node < 3; ++node) {
                if (a.commits[node] < 0 || b.commits[node] < 0) have = false;
                all += b.commits[node] - a.commits[node];
            }
            const double mine = static_cast<double>(b.commits[1] - a.commits[1]);
            if (have && all > 0 && mine / static_cast<double>(all) >= 0.9 / 3) r.share = b.t - back_at;
            break;
        }
    }
    // Nothing acknowledged lost: every node has every acknowledged key.
    for (int n = 0; n < 3; ++n) {
        ambisql::connection c(g.node(n));
        c.query("SET SESSION wsrep_sync_wait = 1");
        auto rows = c.query("SELECT k FROM " + table);
        std::set<std::int64_t> present;
        for (std::size_t i = 0; i < rows.row_count(); ++i) present.insert(rows.row(i)[0].as<std::int64_t>());
        std::size_t lost = 0;
        for (const auto& a : acks) lost += present.count(a.second) == 0;
        r.lost = std::max(r.lost, lost);
    }
    ambisql::connection admin(g.node(0));
    admin.query("DROP TABLE " + table);
    return r;
}

}  // namespace

void galera_bench(const std::string& name) {
    cluster g;
    for (bool bounded : {false, true}) {
        const std::string driver = bounded ? "ambisql-pool" : "ambisql-pool-unbounded";
        std::fprintf(stderr, "  %s (%s)\n", name.c_str(),
                     bounded ? "max_connecting 2, connect_jitter 100 ms" : "max_connecting 0, connect_jitter 0");
        const run_result r = run(g, bounded, "galera_bench_" + std::to_string(::getpid()));
        std::fprintf(stderr,
                     "    %zu acknowledged, %zu lost, %zu of unknown outcome; failed: %d retriable, %d outcome "
                     "unknown, %d fatal; %.0f commits/s before; peak %.0f handshakes/s on the survivors; node evicted "
                     "%.2f s after the kill, 90%% throughput %.2f s after it; restarted node's share back %.1f s after its return; %.1f "
                     "KiB per connection\n",
                     r.acked, r.lost, r.unknown, r.retriable, r.outcome_unknown, r.fatal, r.rate_before,
                     r.peak_handshakes, r.eviction, r.recovery, r.share, r.kb_per_connection);
        record(name, driver, "acknowledged_lost", static_cast<double>(r.lost));
        record(name, driver, "acknowledged", static_cast<double>(r.acked));
        record(name, driver, "failed_retriable", r.retriable);
        record(name, driver, "failed_outcome_unknown", r.outcome_unknown);
        record(name, driver, "failed_fatal", r.fatal);
        record(name, driver, "commits_per_s_before", r.rate_before);
        record(name, driver, "peak_handshakes_per_s", r.peak_handshakes);
        record(name, driver, "eviction_s", r.eviction);
        record(name, driver, "recovery_to_90pct_s", r.recovery);
        record(name, driver, "restarted_node_share_s", r.share);
        record(name, driver, "client_kib_per_connection", r.kb_per_connection);
    }
}

}  // namespace bench
