#pragma once
// Settings of the test server started by scripts/server (see `scripts/server env`).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ambisql/ambisql.hpp"

namespace ambisql::test {

struct server_env {
    std::string url;       // native-password account over TCP
    std::string socket;    // unix socket path
    std::string ca;        // CA that signed the server certificate
    std::string other_ca;  // a CA that signed nothing the server presents
    std::string password;  // password of every test account
    std::string dir;       // the server's folder (scripts/server)
};

// Fails the test (never skips) when the server settings are missing.
const server_env& env();

// Native-password account over TCP with TLS disabled, unless changed after; with
// protocol compression when AMBISQL_TEST_COMPRESS is set (ctest runs the type, query,
// statement, pipeline and LOCAL INFILE suites once more that way).
config tcp_config();
bool compressed_run();
// The same account over the unix socket.
config unix_config();
// A config for another account, over TCP.
config account(const std::string& user);

// A fresh table name per call, so tests can run in parallel processes.
std::string unique_table(const std::string& stem);

// The SELECT expressions of tests/data/expressions.txt (the differential tests).
std::vector<std::string> expression_corpus();

}  // namespace ambisql::test
