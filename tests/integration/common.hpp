#pragma once
// Settings of the test server started by scripts/server (see `scripts/server env`).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
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

// A TCP relay on loopback to the test server, for waits the server itself does not cause.
// deaf: the client's first chunk of 16 kB or more (a large query) is never read, so its
// send fills the socket buffers and waits; stalling: the first connection is relayed, the
// ones after it (a KILL's side connection) are accepted and never answered; queue_full:
// the relay listens on a unix socket whose listen queue is full (one connection waits in
// it) and accepts nothing for the first 300 ms, then relays every connection after that one;
// late: the first connection's statements marked /* late */ (uncompressed) reach the server
// late_by after they were sent, as on a server too busy to read them (a KILL meanwhile
// finds nothing running and is lost).
class relay {
public:
    enum class mode { deaf, stalling, queue_full, late };
    explicit relay(mode m);
    ~relay();
    relay(const relay&) = delete;
    relay& operator=(const relay&) = delete;
    // tcp_config() (queue_full: unix_config()) through the relay.
    config through() const;
    static constexpr std::chrono::milliseconds queue_full_for{300};
    static constexpr std::chrono::milliseconds late_by{800};

private:
    void accept_loop();
    enum class hold { none, deafen, delay_late };
    void pump(int from, int to, hold h);
    int add(int fd);

    mode mode_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::string path_;  // queue_full: the unix socket
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<int> fds_;  // everything to shut down on the way out
    std::vector<std::thread> pumps_;  // (added to under mu_ by the acceptor)
    std::thread acceptor_;
};

// A path to the test server that can vanish without a word: ambisql_blackhole (see
// tests/support/blackhole.cpp) relays through a veth link into a network namespace, which
// down() takes away (no FIN, no RST, packets lost) and up() brings back. Where namespaces
// cannot be made, available() is false and why() says why: the test skips with it.
class blackhole {
public:
    blackhole();
    ~blackhole();
    blackhole(const blackhole&) = delete;
    blackhole& operator=(const blackhole&) = delete;
    bool available() const noexcept { return pid_ > 0 && why_.empty(); }
    const std::string& why() const noexcept { return why_; }
    // tcp_config() through the link.
    config through() const;
    void down();
    void up();

private:
    std::string line();
    void signal(int sig, const char* want);
    int pid_ = -1;
    std::FILE* out_ = nullptr;
    std::string address_, why_;
    std::uint16_t port_ = 0;
};

}  // namespace ambisql::test
