#include "common.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

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

namespace {
int loopback_socket(std::uint16_t port, bool listen) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = fd >= 0 && (listen ? ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 8) == 0
                                       : ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    if (!ok) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("relay: cannot open a loopback socket");
    }
    return fd;
}
}  // namespace

relay::relay(mode m) : mode_(m) {
    if (m == mode::queue_full) {
        path_ = "/tmp/ambisql-relay-" + std::to_string(::getpid()) + ".sock";
        ::unlink(path_.c_str());
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
        listener_ = add(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int held = add(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 0) != 0 ||
            ::connect(held, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("relay: cannot fill a unix socket's listen queue");
        acceptor_ = std::thread([this] { accept_loop(); });
        return;
    }
    listener_ = add(loopback_socket(0, true));
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

relay::~relay() {
    stop_ = true;
    {
        std::lock_guard lock(mu_);
        for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // ends every blocked accept, recv, send
    }
    acceptor_.join();  // (then nothing adds to pumps_ or fds_)
    for (auto& t : pumps_) t.join();
    for (int fd : fds_) ::close(fd);
    if (!path_.empty()) ::unlink(path_.c_str());
}

config relay::through() const {
    if (mode_ == mode::queue_full) {
        config c = unix_config();
        c.unix_socket = path_;
        return c;
    }
    config c = tcp_config();
    c.host = "127.0.0.1";
    c.host_address.clear();
    c.port = port_;
    return c;
}

int relay::add(int fd) {
    std::lock_guard lock(mu_);
    fds_.push_back(fd);
    if (stop_) ::shutdown(fd, SHUT_RDWR);  // (after the destructor's pass over fds_)
    return fd;
}

void relay::accept_loop() {
    const config server = tcp_config();
    if (mode_ == mode::queue_full) std::this_thread::sleep_for(queue_full_for);
    for (bool first = true; !stop_; first = false) {
        const int client = ::accept(listener_, nullptr, nullptr);
        if (client < 0) return;
        add(client);
        if (!first && mode_ == mode::stalling) continue;  // held open, never answered
        if (first && mode_ == mode::queue_full) continue;  // the one that filled the queue
        int up = -1;
        try {
            up = add(loopback_socket(server.port, false));
        } catch (const std::exception&) {
            return;  // (the client then sees the relay close on it)
        }
        const hold h = mode_ == mode::deaf ? hold::deafen : first && mode_ == mode::late ? hold::delay_late : hold::none;
        std::lock_guard lock(mu_);
        pumps_.emplace_back([this, client, up, h] { pump(client, up, h); });
        pumps_.emplace_back([this, client, up] { pump(up, client, hold::none); });
    }
}

void relay::pump(int from, int to, hold h) {
    char buf[65536];
    for (;;) {
        const ssize_t n = ::recv(from, buf, sizeof buf, 0);
        if (n <= 0) return;
        if (h == hold::deafen && n >= 16384) {  // never reads again
            while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            return;
        }
        if (h == hold::delay_late && std::string_view(buf, static_cast<std::size_t>(n)).find("/* late */") != std::string_view::npos)
            for (const auto until = std::chrono::steady_clock::now() + late_by; !stop_ && std::chrono::steady_clock::now() < until;)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
        for (ssize_t off = 0; off < n;) {
            const ssize_t w = ::send(to, buf + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
            if (w <= 0) return;
            off += w;
        }
    }
}

blackhole::blackhole() {
    const config server = tcp_config();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        why_ = "pipe failed";
        return;
    }
    const std::string port = std::to_string(server.port), host = "127.0.0.1";
    pid_ = ::fork();
    if (pid_ == 0) {
        ::dup2(fds[1], 1);
        ::execl(AMBISQL_BLACKHOLE_BIN, AMBISQL_BLACKHOLE_BIN, host.c_str(), port.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
    if (pid_ < 0 || !out_) {
        why_ = "cannot start " AMBISQL_BLACKHOLE_BIN;
        return;
    }
    const std::string first = line();
    char addr[64] = {};
    unsigned port_number = 0;
    if (std::sscanf(first.c_str(), "READY %63s %u", addr, &port_number) == 2) {
        address_ = addr;
        port_ = static_cast<std::uint16_t>(port_number);
    } else {
        why_ = first.rfind("UNAVAILABLE ", 0) == 0 ? first.substr(12) : "ambisql_blackhole said '" + first + "'";
    }
}

blackhole::~blackhole() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    if (out_) std::fclose(out_);
}

std::string blackhole::line() {
    char buf[512];
    if (!std::fgets(buf, sizeof buf, out_)) return "(no answer)";
    std::string l(buf);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    return l;
}

void blackhole::signal(int sig, const char* want) {
    ASSERT_TRUE(available()) << why_;
    ::kill(pid_, sig);
    ASSERT_EQ(line(), want);
}

void blackhole::down() { signal(SIGUSR1, "DOWN"); }
void blackhole::up() { signal(SIGUSR2, "UP"); }

config blackhole::through() const {
    config c = tcp_config();
    c.host = address_;
    c.host_address.clear();
    c.hosts.clear();
    c.port = port_;
    return c;
}

}  // namespace ambisql::test
