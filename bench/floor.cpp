// round_trip_floor: what one request/response round trip costs on this machine with no
// database and no driver at all. A thread of this process answers each 41-byte request
// (a point select's size) with 143 bytes (its response's size); the caller makes one
// blocking send and one blocking receive per round trip, the least any driver can do.
// Its client CPU per round trip is the floor under every driver's client CPU per query
// (mostly the kernel's: system calls, sleeping and being woken).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "bench.hpp"

namespace bench {

namespace {

double thread_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

// A connected pair: unix socketpair, or loopback TCP with TCP_NODELAY (as drivers set).
bool make_pair(bool tcp, int fds[2]) {
    if (!tcp) return ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0;
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 1) != 0 ||
        ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        return false;
    fds[0] = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fds[0], reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    fds[1] = ::accept(l, nullptr, nullptr);
    ::close(l);
    int one = 1;
    for (int i = 0; i < 2; ++i) ::setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fds[1] >= 0;
}

// Reads exactly n bytes (blocking); false at end of stream or on error.
bool read_full(int fd, char* buf, std::size_t n) {
    while (n > 0) {
        ssize_t r = ::recv(fd, buf, n, 0);
        if (r <= 0) return false;
        buf += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

}  // namespace

void round_trip_floor(const std::string& name, bool tcp) {
    constexpr std::size_t request = 41, response = 143;
    int fds[2];
    if (!make_pair(tcp, fds)) {
        std::perror("round_trip_floor: socket pair");
        std::exit(1);
    }
    std::thread echo([fd = fds[1]] {
        char buf[response] = {};
        while (read_full(fd, buf, request))
            if (::send(fd, buf, response, MSG_NOSIGNAL) != static_cast<ssize_t>(response)) break;
    });
    char buf[response] = {};
    std::vector<double> qps, cpu;
    for (int round = 0; round < 6; ++round) {
        const double c0 = thread_cpu_seconds();
        const auto t0 = clk::now();
        for (int i = 0; i < point_queries; ++i) {
            if (::send(fds[0], buf, request, MSG_NOSIGNAL) != static_cast<ssize_t>(request) ||
                !read_full(fds[0], buf, response)) {
                std::perror("round_trip_floor");
                std::exit(1);
            }
        }
        if (round == 0) continue;  // warm-up
        qps.push_back(point_queries / std::chrono::duration<double>(clk::now() - t0).count());
        cpu.push_back((thread_cpu_seconds() - c0) / point_queries);
    }
    ::shutdown(fds[0], SHUT_WR);
    echo.join();
    ::close(fds[0]);
    ::close(fds[1]);
    record(name, "bare-socket", "qps", median(qps));
    record(name, "bare-socket", "client_cpu_s_per_query", median(cpu));
}

}  // namespace bench
