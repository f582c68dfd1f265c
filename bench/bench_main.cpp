// Side-by-side benchmarks: ambisql against libmariadb (MariaDB Connector/C), same server,
// same run. Usage: ambisql_bench [--json FILE] [WORKLOAD...]
//   workloads: round_trip_floor point_select stmt_point_select pipeline_point_select bulk_insert scan blob, each also as <name>/tcp (plain names: unix socket)
// Server from AMBISQL_TEST_URL (TCP) and AMBISQL_TEST_SOCKET.
#include <mysql.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ambisql/ambisql.hpp"
#include "bench.hpp"

namespace bench {

namespace {
struct measurement {
    std::string workload, driver, metric;
    double value;
};
std::vector<measurement> results_out;
}  // namespace

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

namespace {
// /proc/<pid> of the local test server (scripts/server), or "" when the server is not a
// local one this run started.
const std::string& server_proc() {
    static const std::string dir = [] {
        const char* d = std::getenv("AMBISQL_TEST_SERVER_DIR");
        const char* external = std::getenv("AMBISQL_EXTERNAL_SERVER");
        if (!d || (external && *external)) return std::string();
        std::ifstream pidf(std::string(d) + "/mysqld.pid");
        long pid = 0;
        if (!(pidf >> pid) || pid <= 0) return std::string();
        return "/proc/" + std::to_string(pid);
    }();
    return dir;
}
}  // namespace

double server_cpu_seconds() {
    if (server_proc().empty()) return -1;
    std::ifstream f(server_proc() + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close = s.rfind(')');
    if (close == std::string::npos) return -1;
    // Fields after the command name: state is field 3; utime and stime are 14 and 15.
    std::istringstream in(s.substr(close + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) in >> skip;
    unsigned long long ut = 0, st = 0;
    if (!(in >> ut >> st)) return -1;
    return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double server_sleeps() {
    if (server_proc().empty()) return -1;
    std::error_code ec;
    double total = 0;
    for (const auto& task : std::filesystem::directory_iterator(server_proc() + "/task", ec)) {
        std::ifstream f(task.path() / "status");  // (a thread that ended meanwhile: nothing)
        std::string line;
        while (std::getline(f, line))
            if (line.rfind("voluntary_ctxt_switches:", 0) == 0) total += std::strtod(line.c_str() + 24, nullptr);
    }
    return ec ? -1 : total;
}

ambisql::config base_config(bool tcp) {
    auto cfg = ambisql::config::from_url(std::getenv("AMBISQL_TEST_URL"));
    cfg.ssl = ambisql::ssl_mode::disabled;
    if (!tcp) cfg.unix_socket = std::getenv("AMBISQL_TEST_SOCKET");
    return cfg;
}

MYSQL* ref_connect(bool tcp) {
    auto cfg = base_config(tcp);
    MYSQL* m = mysql_init(nullptr);
    unsigned int ssl_off = 0;
    mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &ssl_off);
    my_bool verify = 0;
    mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    if (!mysql_real_connect(m, tcp ? cfg.host.c_str() : nullptr, cfg.user.c_str(), cfg.password.c_str(),
                            cfg.database.c_str(), tcp ? cfg.port : 0, tcp ? nullptr : cfg.unix_socket.c_str(), 0)) {
        std::fprintf(stderr, "libmariadb connect: %s\n", mysql_error(m));
        std::exit(1);
    }
    return m;
}

void ref_query(MYSQL* m, const char* sql, std::size_t len) {
    if (mysql_real_query(m, sql, len) != 0) {
        std::fprintf(stderr, "libmariadb query: %s\n", mysql_error(m));
        std::exit(1);
    }
}

void record(const std::string& w, const std::string& d, const std::string& m, double v) {
    results_out.push_back({w, d, m, v});
}

std::vector<int> point_ids() {
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> d(1, 10000);
    std::vector<int> ids(point_queries);
    for (auto& i : ids) i = d(rng);
    return ids;
}

}  // namespace bench

namespace {
using namespace bench;

void setup_tables() {
    ambisql::connection c(base_config(false));
    auto have = [&](const char* t, std::uint64_t rows) {
        auto r = c.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", t);
        if (r.row(0)[0].as<int>() == 0) return false;
        return c.query(std::string("SELECT COUNT(*) FROM ") + t).row(0)[0].as<std::uint64_t>() == rows;
    };
    auto make = [&](const char* t, int rows) {
        if (have(t, rows)) return;
        std::fprintf(stderr, "creating %s (%d rows)\n", t, rows);
        c.query(std::string("DROP TABLE IF EXISTS ") + t);
        c.query(std::string("CREATE TABLE ") + t +
                " (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', "
                "pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB");
        // sysbench-like contents: groups of 11 digits joined by dashes.
        c.query(std::string("INSERT INTO ") + t +
                " SELECT seq, FLOOR(RAND(seq) * " + std::to_string(rows) +
                "), SUBSTRING(REPEAT(CONCAT(LPAD(FLOOR(RAND(seq * 3) * 99999999999), 11, '0'), '-'), 10), 1, 119), "
                "SUBSTRING(REPEAT(CONCAT(LPAD(FLOOR(RAND(seq * 7) * 99999999999), 11, '0'), '-'), 5), 1, 59) "
                "FROM seq_1_to_" + std::to_string(rows));
    };
    make("sbtest1", 10000);
    make("sbtest_scan", 100000);
    c.query("CREATE TABLE IF NOT EXISTS bench_blob (id INT PRIMARY KEY, b LONGBLOB)");
    c.query("INSERT IGNORE INTO bench_blob VALUES (1, '')");
    // Warm the server's buffer pool: a freshly started server reads from disk at first.
    c.query("SELECT SUM(LENGTH(c) + LENGTH(pad) + k) FROM sbtest1");
    c.query("SELECT SUM(LENGTH(c) + LENGTH(pad) + k) FROM sbtest_scan");
}


}  // namespace

namespace bench {
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}
}  // namespace bench

namespace {
using namespace bench;

// Runs the two drivers in alternation, `rounds` times each, so drift on the machine hits
// both alike; records the median of each metric. A run returns its timing; `units` is
// how many queries / rows / MiB one run moves.
constexpr int rounds = 5;
void run_pair(const std::string& name, double units, const char* rate_metric, const char* cpu_metric,
              const std::function<timing()>& reference, const std::function<timing()>& ours) {
    std::vector<double> rate[2], cpu[2], server[2], sleeps[2];
    reference();  // one warm-up run each, not counted
    ours();
    for (int r = 0; r < rounds; ++r) {
        for (int d = 0; d < 2; ++d) {
            timing t = d == 0 ? reference() : ours();
            rate[d].push_back(units / t.wall);
            cpu[d].push_back(t.cpu / units);
            if (t.server_cpu >= 0) server[d].push_back(t.server_cpu / units);
            if (t.server_sleeps >= 0) sleeps[d].push_back(t.server_sleeps / units);
        }
    }
    const char* drivers[2] = {"libmariadb", "ambisql"};
    for (int d = 0; d < 2; ++d) {
        record(name, drivers[d], rate_metric, median(rate[d]));
        if (!cpu_metric) continue;
        record(name, drivers[d], cpu_metric, median(cpu[d]));
        // The server's CPU for the same work (what bounds a pipeline on one connection).
        const std::string client_metric(cpu_metric), prefix("client_cpu_s");
        if (client_metric.rfind(prefix, 0) != 0) continue;
        const std::string per = client_metric.substr(prefix.size());  // "_per_query"
        if (!server[d].empty()) record(name, drivers[d], "server_cpu_s" + per, median(server[d]));
        if (!sleeps[d].empty()) record(name, drivers[d], "server_sleeps" + per, median(sleeps[d]));
    }
}

// ---------------------------------------------------------------- point_select


// libmariadb's text-protocol point selects (the reference of point_select, and the scale
// of pipeline_point_select).
timing ref_point_selects(MYSQL* m, const std::vector<int>& ids) {
    char sql[128];
    std::size_t total = 0;
    auto t = measure([&] {
        for (int id : ids) {
            int n = std::snprintf(sql, sizeof sql, "SELECT c FROM sbtest1 WHERE id = %d", id);
            ref_query(m, sql, n);
            MYSQL_RES* r = mysql_store_result(m);
            while (MYSQL_ROW row = mysql_fetch_row(r)) total += mysql_fetch_lengths(r)[0] + (row[0] != nullptr);
            mysql_free_result(r);
        }
    });
    if (total == 0) std::exit(1);
    return t;
}

// ambisql's text-protocol point selects (point_select, and the scale of
// pipeline_point_select).
timing our_point_selects(ambisql::connection& c, const std::vector<int>& ids) {
    ambisql::results res;
    char sql[128];
    std::size_t total = 0;
    auto t = measure([&] {
        for (int id : ids) {
            int n = std::snprintf(sql, sizeof sql, "SELECT c FROM sbtest1 WHERE id = %d", id);
            c.query(std::string_view(sql, n), res);
            for (auto row : res.rows()) total += row[0].as<std::string_view>().size() + 1;
        }
    });
    if (total == 0) std::exit(1);
    return t;
}

void point_select(const std::string& name, bool tcp) {
    auto ids = point_ids();
    MYSQL* m = ref_connect(tcp);
    ambisql::connection c(base_config(tcp));
    run_pair(
        name, point_queries, "qps", "client_cpu_s_per_query", [&] { return ref_point_selects(m, ids); },
        [&] { return our_point_selects(c, ids); });
    mysql_close(m);
}

// ---------------------------------------------------------------- stmt_point_select

// The same point selects through prepared statements: libmariadb's mysql_stmt API (one
// statement, parameter and result bound once) against execute() with its statement cache.
void stmt_point_select(const std::string& name, bool tcp) {
    auto ids = point_ids();
    const char* sql = "SELECT c FROM sbtest1 WHERE id = ?";
    MYSQL* m = ref_connect(tcp);
    MYSQL_STMT* st = mysql_stmt_init(m);
    if (mysql_stmt_prepare(st, sql, std::strlen(sql)) != 0) {
        std::fprintf(stderr, "libmariadb prepare: %s\n", mysql_stmt_error(st));
        std::exit(1);
    }
    int param = 0;
    MYSQL_BIND pb{};
    pb.buffer_type = MYSQL_TYPE_LONG;
    pb.buffer = &param;
    mysql_stmt_bind_param(st, &pb);
    char cbuf[256];
    unsigned long clen = 0;
    my_bool cnull = 0;
    MYSQL_BIND rb{};
    rb.buffer_type = MYSQL_TYPE_STRING;
    rb.buffer = cbuf;
    rb.buffer_length = sizeof cbuf;
    rb.length = &clen;
    rb.is_null = &cnull;
    mysql_stmt_bind_result(st, &rb);
    ambisql::connection c(base_config(tcp));
    ambisql::results res;
    run_pair(
        name, point_queries, "qps", "client_cpu_s_per_query",
        [&] {
            std::size_t total = 0;
            auto t = measure([&] {
                for (int id : ids) {
                    param = id;
                    if (mysql_stmt_execute(st) != 0) {
                        std::fprintf(stderr, "libmariadb execute: %s\n", mysql_stmt_error(st));
                        std::exit(1);
                    }
                    while (mysql_stmt_fetch(st) == 0) total += clen + 1;
                    mysql_stmt_free_result(st);
                }
            });
            if (total == 0) std::exit(1);
            return t;
        },
        [&] {
            std::size_t total = 0;
            auto t = measure([&] {
                for (int id : ids) {
                    const ambisql::sql_arg arg[] = {id};
                    c.execute_args(sql, arg, res);
                    for (auto row : res.rows()) total += row[0].as<std::string_view>().size() + 1;
                }
            });
            if (total == 0) std::exit(1);
            return t;
        });
    mysql_stmt_close(st);
    mysql_close(m);
}

// ---------------------------------------------------------------- pipeline_point_select

// The point selects of point_select, 64 per pipeline (one write, responses in order),
// through the statement cache. libmariadb has no pipelining: its figure in this workload
// is its point_select loop again, for scale. The floor compares the pipeline with
// ambisql's own point_select loop, so that loop runs here too, in alternation with the
// pipeline (machine drift hits both alike): `point_select_qps` and the median of the
// per-round ratios, `x_point_select`.
void pipeline_point_select(const std::string& name, bool tcp) {
    auto ids = point_ids();
    MYSQL* m = ref_connect(tcp);
    ambisql::connection c(base_config(tcp));
    ambisql::connection plain(base_config(tcp));
    ambisql::pipeline p;
    auto pipelined = [&] {
        std::size_t total = 0;
        auto t = measure([&] {
            for (std::size_t i = 0; i < ids.size(); i += 64) {
                p.clear();
                for (std::size_t k = i; k < std::min(ids.size(), i + 64); ++k)
                    p.execute("SELECT c FROM sbtest1 WHERE id = ?", ids[k]);
                c.run(p);
                for (std::size_t k = 0; k < p.size(); ++k)
                    for (auto row : p[k].result().first()) total += row[0].as<std::string_view>().size() + 1;
            }
        });
        if (total == 0) std::exit(1);
        return t;
    };
    std::vector<double> plain_qps, ratio;
    run_pair(
        name, point_queries, "qps", "client_cpu_s_per_query", [&] { return ref_point_selects(m, ids); },
        [&] {
            timing t = pipelined();
            double q = point_queries / our_point_selects(plain, ids).wall;
            plain_qps.push_back(q);
            ratio.push_back(point_queries / t.wall / q);
            return t;
        });
    plain_qps.erase(plain_qps.begin());  // the warm-up round
    ratio.erase(ratio.begin());
    record(name, "ambisql", "point_select_qps", median(plain_qps));
    record(name, "ambisql", "x_point_select", median(ratio));
    mysql_close(m);
}

// ---------------------------------------------------------------- bulk_insert

// 100 000 rows of four columns into an empty table: libmariadb's array binding
// (STMT_ATTR_ARRAY_SIZE, column-wise) against execute_many. Table emptied between runs.
void bulk_insert(const std::string& name, bool tcp) {
    constexpr unsigned rows = 100000;
    const char* sql = "INSERT INTO bench_bulk VALUES (?, ?, ?, ?)";
    std::vector<int> ids(rows), ks(rows);
    std::vector<std::string> cs(rows), pads(rows);
    for (unsigned i = 0; i < rows; ++i) {
        ids[i] = static_cast<int>(i + 1);
        ks[i] = static_cast<int>((i * 7919u) % rows);
        cs[i] = std::string(119, static_cast<char>('a' + i % 26));
        pads[i] = std::string(59, static_cast<char>('A' + i % 26));
    }
    ambisql::connection c(base_config(tcp));
    c.query("CREATE TABLE IF NOT EXISTS bench_bulk (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT "
            "NULL, pad CHAR(60) NOT NULL) ENGINE=InnoDB");
    MYSQL* m = ref_connect(tcp);
    MYSQL_STMT* st = mysql_stmt_init(m);
    if (mysql_stmt_prepare(st, sql, std::strlen(sql)) != 0) {
        std::fprintf(stderr, "libmariadb prepare: %s\n", mysql_stmt_error(st));
        std::exit(1);
    }
    std::vector<const char*> cptr(rows), padptr(rows);
    std::vector<unsigned long> clen(rows), padlen(rows);
    for (unsigned i = 0; i < rows; ++i) {
        cptr[i] = cs[i].c_str();
        clen[i] = cs[i].size();
        padptr[i] = pads[i].c_str();
        padlen[i] = pads[i].size();
    }
    MYSQL_BIND b[4]{};
    b[0].buffer_type = MYSQL_TYPE_LONG;
    b[0].buffer = ids.data();
    b[1].buffer_type = MYSQL_TYPE_LONG;
    b[1].buffer = ks.data();
    b[2].buffer_type = MYSQL_TYPE_STRING;
    b[2].buffer = cptr.data();
    b[2].length = clen.data();
    b[3].buffer_type = MYSQL_TYPE_STRING;
    b[3].buffer = padptr.data();
    b[3].length = padlen.data();
    unsigned int array_size = rows;
    mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &array_size);
    mysql_stmt_bind_param(st, b);
    std::vector<ambisql::sql_arg> values;
    values.reserve(rows * 4);
    for (unsigned i = 0; i < rows; ++i) {
        values.emplace_back(ids[i]);
        values.emplace_back(ks[i]);
        values.emplace_back(std::string_view(cs[i]));
        values.emplace_back(std::string_view(pads[i]));
    }
    auto empty = [&] { c.query("TRUNCATE TABLE bench_bulk"); };
    run_pair(
        name, rows, "rows_per_s", "client_cpu_s_per_row",
        [&] {
            empty();
            auto t = measure([&] {
                if (mysql_stmt_execute(st) != 0) {
                    std::fprintf(stderr, "libmariadb bulk: %s\n", mysql_stmt_error(st));
                    std::exit(1);
                }
            });
            if (mysql_stmt_affected_rows(st) != rows) std::exit(1);
            return t;
        },
        [&] {
            empty();
            std::uint64_t n = 0;
            auto t = measure([&] { n = c.execute_many(sql, values, 4); });
            if (n != rows) std::exit(1);
            return t;
        });
    mysql_stmt_close(st);
    mysql_close(m);
    c.query("DROP TABLE bench_bulk");
}

// ---------------------------------------------------------------- scan

void scan(const std::string& name, bool tcp) {
    const char* sql = "SELECT * FROM sbtest_scan";
    constexpr double rows = 100000;
    MYSQL* m = ref_connect(tcp);
    ambisql::connection c(base_config(tcp));
    run_pair(
        name, rows, "rows_per_s", "client_cpu_s_per_row",
        [&] {
            std::uint64_t n = 0, check = 0;
            auto t = measure([&] {
                ref_query(m, sql, std::strlen(sql));
                MYSQL_RES* r = mysql_use_result(m);
                while (MYSQL_ROW row = mysql_fetch_row(r)) {
                    unsigned long* len = mysql_fetch_lengths(r);
                    check += std::strtol(row[0], nullptr, 10) + std::strtol(row[1], nullptr, 10) + len[2] + len[3];
                    ++n;
                }
                mysql_free_result(r);
            });
            if (n != rows || !check) std::exit(1);
            return t;
        },
        [&] {
            std::uint64_t n = 0, check = 0;
            auto t = measure([&] {
                auto st = c.stream(sql);
                ambisql::row_view row;
                while (st.next(row)) {
                    check += row[0].as<std::int64_t>() + row[1].as<std::int64_t>() +
                             row[2].as<std::string_view>().size() + row[3].as<std::string_view>().size();
                    ++n;
                }
            });
            if (n != rows || !check) std::exit(1);
            return t;
        });
    mysql_close(m);
}

// ---------------------------------------------------------------- blob

void blob(const std::string& name, bool tcp) {
    constexpr std::size_t size = 1 << 20;
    constexpr int iters = 20;
    std::string data(size, '\0');
    std::mt19937 rng(99);
    for (auto& ch : data) ch = static_cast<char>(rng());
    // The same upload statement for both drivers: a hex literal built once.
    std::string upload = "UPDATE bench_blob SET b = X'";
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned char ch : data) {
        upload.push_back(hex[ch >> 4]);
        upload.push_back(hex[ch & 15]);
    }
    upload += "' WHERE id = 1";
    const char* download = "SELECT b FROM bench_blob WHERE id = 1";
    MYSQL* m = ref_connect(tcp);
    ambisql::connection c(base_config(tcp));
    ambisql::results res;
    // One round trip: the BLOB up (UPDATE) and back down (SELECT); 2 MiB of payload.
    run_pair(
        name, 2.0 * iters, "mib_per_s", nullptr,
        [&] {
            std::size_t got = 0;
            auto t = measure([&] {
                for (int i = 0; i < iters; ++i) {
                    ref_query(m, upload.data(), upload.size());
                    ref_query(m, download, std::strlen(download));
                    MYSQL_RES* r = mysql_store_result(m);
                    MYSQL_ROW row = mysql_fetch_row(r);
                    got += mysql_fetch_lengths(r)[0] + (row != nullptr);
                    mysql_free_result(r);
                }
            });
            if (got != (size + 1) * iters) std::exit(1);
            return t;
        },
        [&] {
            std::size_t got = 0;
            auto t = measure([&] {
                for (int i = 0; i < iters; ++i) {
                    c.query(upload, res);
                    c.query(download, res);
                    got += res.row(0)[0].as<std::string_view>().size() + 1;
                }
            });
            if (got != (size + 1) * iters) std::exit(1);
            return t;
        });
    mysql_close(m);
}

void print_table() {
    std::printf("\n%-30s %-14s %-24s %14s %8s\n", "workload", "driver", "metric", "value", "ratio");
    for (const auto& m : results_out) {
        double ref = 0;
        for (const auto& r : results_out)
            if (r.workload == m.workload && r.metric == m.metric && r.driver == "libmariadb") ref = r.value;
        char ratio[32] = "";
        if (ref > 0 && m.driver != "libmariadb") std::snprintf(ratio, sizeof ratio, "%.2fx", m.value / ref);
        std::printf("%-30s %-14s %-24s %14.6g %8s\n", m.workload.c_str(), m.driver.c_str(), m.metric.c_str(), m.value,
                    ratio);
    }
}

void write_json(const std::string& path) {
    std::ofstream f(path);
    f << "[\n";
    for (std::size_t i = 0; i < results_out.size(); ++i) {
        const auto& m = results_out[i];
        f << "  {\"workload\": \"" << m.workload << "\", \"driver\": \"" << m.driver << "\", \"metric\": \""
          << m.metric << "\", \"value\": " << m.value << "}" << (i + 1 < results_out.size() ? "," : "") << "\n";
    }
    f << "]\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (!std::getenv("AMBISQL_TEST_URL") || !std::getenv("AMBISQL_TEST_SOCKET")) {
        std::fprintf(stderr, "set AMBISQL_TEST_URL and AMBISQL_TEST_SOCKET (scripts/bench does)\n");
        return 2;
    }
    std::string json;
    std::vector<std::string> names;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--json" && i + 1 < argc) {
            json = argv[++i];
        } else {
            names.push_back(a);
        }
    }
    const std::map<std::string, std::function<void(const std::string&, bool)>> workloads = {
        {"point_select", point_select}, {"stmt_point_select", stmt_point_select},
        {"pipeline_point_select", pipeline_point_select}, {"bulk_insert", bulk_insert}, {"scan", scan}, {"blob", blob},
        {"round_trip_floor", round_trip_floor}};
    if (names.empty()) {
        for (const char* w : {"round_trip_floor", "point_select", "stmt_point_select", "pipeline_point_select", "bulk_insert", "scan", "blob"}) {
            names.push_back(w);
            names.push_back(std::string(w) + "/tcp");
        }
        for (int c : {1, 4, 16, 64}) names.push_back("concurrent_point_select/c" + std::to_string(c));
        names.push_back("pool/tls");
        names.push_back("pool/c16");
        if (std::getenv("AMBISQL_GALERA_PORTS")) names.push_back("galera/failover");
    }
    try {
        setup_tables();
        for (const auto& n : names) {
            auto slash = n.find('/');
            std::string base = n.substr(0, slash);
            if (n == "galera/failover") {
                std::fprintf(stderr, "running %s\n", n.c_str());
                galera_bench(n);
                continue;
            }
            if (n == "pool/tls" || n == "pool/c16") {
                std::fprintf(stderr, "running %s\n", n.c_str());
                pool_bench(n);
                continue;
            }
            if (base == "concurrent_point_select" && slash != std::string::npos && n[slash + 1] == 'c') {
                std::fprintf(stderr, "running %s\n", n.c_str());
                const auto driver = n.find('/', slash + 1);  // concurrent_point_select/cN/DRIVER
                concurrent_point_select(n.substr(0, driver), std::atoi(n.c_str() + slash + 2),
                                        driver == std::string::npos ? std::string() : n.substr(driver + 1));
                continue;
            }
            bool tcp = slash != std::string::npos && n.substr(slash + 1) == "tcp";
            auto it = workloads.find(base);
            if (it == workloads.end() || (slash != std::string::npos && !tcp)) {
                std::fprintf(stderr, "unknown workload '%s'\n", n.c_str());
                return 2;
            }
            std::fprintf(stderr, "running %s\n", n.c_str());
            it->second(n, tcp);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "benchmark failed: %s\n", e.what());
        return 1;
    }
    print_table();
    if (!json.empty()) write_json(json);
    return 0;
}
