#pragma once
// Helpers shared by the benchmark translation units.
#include <mysql.h>

#include <chrono>
#include <string>
#include <vector>

#include "ambisql/config.hpp"

namespace bench {

using clk = std::chrono::steady_clock;
constexpr int point_queries = 20000;  // per run of point_select

struct timing {
    double wall = 0, cpu = 0;
    double server_cpu = -1;     // the local server's CPU seconds (-1: not known)
    double server_sleeps = -1;  // how often its threads went to sleep (-1: not known)
};

double cpu_seconds();  // user + system of the whole process (all threads)
// User + system CPU seconds of the local test server process (scripts/server), from
// /proc; -1 when the server is not a local one this run started.
double server_cpu_seconds();
// Voluntary context switches of all the local test server's threads so far (-1: not
// known): a server thread that finds no query waiting when it is done sleeps, and being
// woken is much of its CPU per query on this machine.
double server_sleeps();

template <class F>
timing measure(F&& f) {
    const double s0 = server_cpu_seconds(), z0 = server_sleeps();
    double c0 = cpu_seconds();
    auto t0 = clk::now();
    f();
    timing t;
    t.wall = std::chrono::duration<double>(clk::now() - t0).count();
    t.cpu = cpu_seconds() - c0;
    if (s0 >= 0) t.server_cpu = server_cpu_seconds() - s0;
    if (z0 >= 0) t.server_sleeps = server_sleeps() - z0;
    return t;
}

ambisql::config base_config(bool tcp);
MYSQL* ref_connect(bool tcp);
void ref_query(MYSQL* m, const char* sql, std::size_t len);
void record(const std::string& workload, const std::string& driver, const std::string& metric, double value);
std::vector<int> point_ids();
double median(std::vector<double> v);

// floor.cpp
void round_trip_floor(const std::string& name, bool tcp);

// concurrent.cpp
void concurrent_point_select(const std::string& name, int connections, const std::string& only = {});

// pool.cpp: pool/tls and pool/c16
void pool_bench(const std::string& name);

// galera.cpp: galera/failover (the cluster of scripts/galera)
void galera_bench(const std::string& name);

}  // namespace bench
