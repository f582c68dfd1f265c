#include "common.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

namespace ambisql::test {

namespace {
std::string get(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}
}  // namespace

const server_env& env() {
    static const server_env e = [] {
        server_env s;
        s.url = get("AMBISQL_TEST_URL");
        s.socket = get("AMBISQL_TEST_SOCKET");
        s.ca = get("AMBISQL_TEST_CA");
        s.other_ca = get("AMBISQL_TEST_OTHER_CA");
        s.password = get("AMBISQL_TEST_PASSWORD");
        s.dir = get("AMBISQL_TEST_SERVER_DIR");
        return s;
    }();
    if (e.url.empty()) ADD_FAILURE() << "AMBISQL_TEST_URL is not set: run the tests through scripts/test";
    return e;
}

config tcp_config() {
    config c = config::from_url(env().url);
    c.ssl = ssl_mode::disabled;
    c.compress = compressed_run();
    return c;
}

bool compressed_run() {
    const char* v = std::getenv("AMBISQL_TEST_COMPRESS");
    return v && *v && std::string_view(v) != "0";
}

config unix_config() {
    config c = tcp_config();
    c.unix_socket = env().socket;
    if (c.unix_socket.empty()) ADD_FAILURE() << "AMBISQL_TEST_SOCKET is not set";
    return c;
}

config account(const std::string& user) {
    config c = tcp_config();
    c.user = user;
    c.password = env().password;
    return c;
}

std::string unique_table(const std::string& stem) {
    static std::atomic<int> n{0};
    return stem + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
}

std::vector<std::string> expression_corpus() {
    std::ifstream in(AMBISQL_TEST_DATA_DIR "/expressions.txt");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '#') out.push_back(line);
    return out;
}

}  // namespace ambisql::test
