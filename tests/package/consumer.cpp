// Built out of tree against an installed ambisql (find_package or pkg-config): connects to
// the URL given, runs one interpolated query and one prepared execute, prints the values.
#include <ambisql/connection.hpp>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: consumer mysql://user:pw@host:port/db\n");
        return 2;
    }
    try {
        ambisql::connection conn(ambisql::config::from_url(argv[1]));
        auto text = conn.query("SELECT ? + 1, CONCAT('installed ', ?)", 41, "package");
        auto bin = conn.execute("SELECT ? * 2", 21);
        long long a = text.row(0)[0].as<std::int64_t>();
        std::string b(text.row(0)[1].as<std::string_view>());
        long long c = bin.row(0)[0].as<std::int64_t>();
        std::printf("%lld %s %lld\n", a, b.c_str(), c);
        return a == 42 && b == "installed package" && c == 42 ? 0 : 1;
    } catch (const ambisql::error& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
}
