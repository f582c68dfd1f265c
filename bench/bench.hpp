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
};

double cpu_seconds();  // user + system of the whole process (all threads)

template <class F>
timing measure(F&& f) {
    double c0 = cpu_seconds();
    auto t0 = clk::now();
    f();
    timing t;
    t.wall = std::chrono::duration<double>(clk::now() - t0).count();
    t.cpu = cpu_seconds() - c0;
    return t;
}

ambisql::config base_config(bool tcp);
MYSQL* ref_connect(bool tcp);
void ref_query(MYSQL* m, const char* sql, std::size_t len);
void record(const std::string& workload, const std::string& driver, const std::string& metric, double value);
std::vector<int> point_ids();

// concurrent.cpp
void concurrent_point_select(const std::string& name, int connections);

}  // namespace bench
