// ambisql demo: the blocking API end to end.
//   demo <mysql://user:password@host:port/db> [unix-socket-path] [ca-file]
#include <cstdio>
#include <cstdlib>

#include "ambisql/ambisql.hpp"

int main(int argc, char** argv) {
    const char* url = argc > 1 ? argv[1] : std::getenv("AMBISQL_TEST_URL");
    if (!url) {
        std::fprintf(stderr, "usage: demo mysql://user:password@host:port/db [socket] [ca.pem]\n");
        return 2;
    }
    try {
        // 1. TCP with TLS, the server's certificate checked against our CA and host name.
        auto cfg = ambisql::config::from_url(url);
        if (argc > 3) {
            cfg.ssl = ambisql::ssl_mode::verify_identity;
            cfg.ssl_ca = argv[3];
        }
        ambisql::connection conn(cfg);
        std::printf("TCP %s:%u  server %s  TLS: %s\n", cfg.host.c_str(), cfg.port, conn.server_version().c_str(),
                    conn.tls_active() ? conn.tls_version().c_str() : "off");

        // 2. The unix socket.
        if (argc > 2) {
            auto ucfg = cfg;
            ucfg.unix_socket = argv[2];
            ambisql::connection local(ucfg);
            auto r = local.query("SELECT CONNECTION_ID(), @@socket");
            std::printf("unix socket: connection %s via %s\n", r.row(0)[0].to_string().c_str(),
                        r.row(0)[1].to_string().c_str());
        }

        // 2b. Protocol compression (zlib), under TLS when the first connection had it.
        {
            auto zcfg = cfg;
            zcfg.compress = true;
            ambisql::connection z(zcfg);
            auto r = z.query("SELECT REPEAT('ambisql ', 100000)");
            std::printf("compressed: %s, TLS: %s, read back %zu bytes of text\n", z.compressed() ? "on" : "off",
                        z.tls_active() ? "on" : "off", r.row(0)[0].as<std::string_view>().size());
        }

        // 3. A table, rows inserted with client-side escaped parameters.
        conn.query("DROP TABLE IF EXISTS demo_items");
        conn.query(
            "CREATE TABLE demo_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100), "
            "price DECIMAL(10,2), added DATETIME(6), note TEXT NULL)");
        auto ins = conn.query("INSERT INTO demo_items (name, price, added, note) VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
                              "O'Reilly \"quoted\" \\ backslash", 19.5,
                              ambisql::datetime{2026, 11, 25, 18, 30, 0, 123456}, nullptr, "plain", 3,
                              ambisql::datetime{2000, 1, 1, 0, 0, 0, 0}, "a note");
        std::printf("inserted %llu rows, last id %llu\n", (unsigned long long)ins.affected_rows(),
                    (unsigned long long)ins.last_insert_id());

        // 4. Typed values back.
        auto res = conn.query("SELECT id, name, price, added, note FROM demo_items WHERE id >= ? ORDER BY id", 1);
        for (auto row : res.rows()) {
            std::printf("  id=%lld name=%s price=%s added=%s note=%s\n", (long long)row[0].as<std::int64_t>(),
                        std::string(row[1].as<std::string_view>()).c_str(), std::string(row[2].get_text()).c_str(),
                        ambisql::to_string(row[3].as<ambisql::datetime>()).c_str(), row[4].to_string().c_str());
        }

        // 5. A server error, reported cleanly; the connection stays usable.
        try {
            conn.query("SELECT * FROM no_such_table");
        } catch (const ambisql::error& e) {
            std::printf("server error reported: %s (usable: %s)\n", e.what(), e.connection_usable() ? "yes" : "no");
        }
        std::printf("still usable: SELECT 1 -> %lld\n", (long long)conn.query("SELECT 1").row(0)[0].as<std::int64_t>());
        conn.query("DROP TABLE demo_items");
    } catch (const ambisql::error& e) {
        std::fprintf(stderr, "demo failed: %s\n", e.what());
        return 1;
    }
    return 0;
}
