// The pool's benchmarks.
//   pool/tls: point selects, one per request, over TCP with TLS: a pooled connection per
//     request (ambisql-pool) against a new connection per request (ambisql-connect-per-
//     request, and libmariadb doing the same for reference).
//   pool/c16: 16 threads doing point selects over the unix socket, each request acquiring
//     a pooled connection and giving it back (ambisql-pool, 16 connections), against a
//     dedicated connection per thread (ambisql-dedicated): what the pool costs.
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "ambisql/connection.hpp"
#include "ambisql/pool.hpp"
#include "bench.hpp"

namespace bench {

namespace {

constexpr double seconds = 2.0;

ambisql::config tls_config() {
    auto cfg = base_config(true);
    cfg.ssl = ambisql::ssl_mode::required;
    return cfg;
}

int point(char* buf, std::size_t cap, std::mt19937& rng) {
    return std::snprintf(buf, cap, "SELECT c FROM sbtest1 WHERE id = %d", static_cast<int>(rng() % 10000) + 1);
}

struct rate {
    double qps, cpu_per_query;
};

// Requests for `seconds` on `threads` threads; `request` does one.
template <class Request>
rate run(int threads, Request&& request) {
    std::atomic<std::uint64_t> total{0};
    auto t = measure([&] {
        const auto end = clk::now() + std::chrono::duration<double>(seconds);
        std::vector<std::thread> ts;
        for (int i = 0; i < threads; ++i) {
            ts.emplace_back([&, i] {
                std::mt19937 rng(i);
                std::uint64_t n = 0;
                while (clk::now() < end) {
                    request(i, rng);
                    ++n;
                }
                total += n;
            });
        }
        for (auto& th : ts) th.join();
    });
    return {total / t.wall, t.cpu / total};
}

void report(const std::string& name, const char* driver, const std::vector<rate>& rs) {
    std::vector<double> q, c;
    for (const rate& r : rs) {
        q.push_back(r.qps);
        c.push_back(r.cpu_per_query);
    }
    record(name, driver, "qps", median(q));
    record(name, driver, "client_cpu_s_per_query", median(c));
}

void tls(const std::string& name) {
    const auto cfg = tls_config();
    std::vector<rate> per_request, ref, pooled;
    ambisql::pool_config pc;
    pc.connection = cfg;
    pc.limits.max_size = 4;
    ambisql::pool p(pc);
    p.prefill(1);
    for (int round = 0; round < 2; ++round) {  // alternating
        per_request.push_back(run(1, [&](int, std::mt19937& rng) {
            char sql[96];
            ambisql::connection c(cfg);
            c.query(std::string_view(sql, point(sql, sizeof sql, rng)));
        }));
        ref.push_back(run(1, [&](int, std::mt19937& rng) {
            char sql[96];
            MYSQL* m = mysql_init(nullptr);
            my_bool verify = 0;
            mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
            unsigned int enforce = 1;
            mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &enforce);
            if (!mysql_real_connect(m, cfg.host.c_str(), cfg.user.c_str(), cfg.password.c_str(), cfg.database.c_str(),
                                    cfg.port, nullptr, 0)) {
                std::fprintf(stderr, "libmariadb connect: %s\n", mysql_error(m));
                std::exit(1);
            }
            ref_query(m, sql, point(sql, sizeof sql, rng));
            mysql_free_result(mysql_store_result(m));
            mysql_close(m);
        }));
        pooled.push_back(run(1, [&](int, std::mt19937& rng) {
            char sql[96];
            auto c = p.acquire();
            c->query(std::string_view(sql, point(sql, sizeof sql, rng)));
        }));
    }
    report(name, "ambisql-connect-per-request", per_request);
    report(name, "libmariadb-connect-per-request", ref);
    report(name, "ambisql-pool", pooled);
}

void c16(const std::string& name) {
    constexpr int users = 16;
    std::vector<rate> dedicated_rates, pooled;
    std::vector<ambisql::connection> dedicated;
    for (int i = 0; i < users; ++i) dedicated.emplace_back(base_config(false));
    ambisql::pool_config pc;
    pc.connection = base_config(false);
    pc.limits.max_size = users;
    ambisql::pool p(pc);
    p.prefill(users);
    for (int round = 0; round < 3; ++round) {  // alternating
        dedicated_rates.push_back(run(users, [&](int i, std::mt19937& rng) {
            char sql[96];
            dedicated[i].query(std::string_view(sql, point(sql, sizeof sql, rng)));
        }));
        pooled.push_back(run(users, [&](int, std::mt19937& rng) {
            char sql[96];
            auto c = p.acquire();
            c->query(std::string_view(sql, point(sql, sizeof sql, rng)));
        }));
    }
    report(name, "ambisql-dedicated", dedicated_rates);
    report(name, "ambisql-pool", pooled);
}

}  // namespace

void pool_bench(const std::string& name) {
    if (name == "pool/tls") return tls(name);
    c16(name);
}

}  // namespace bench
