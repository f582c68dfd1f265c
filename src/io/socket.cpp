#include "io/socket.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ambisql/error.hpp"

namespace ambisql::io {

namespace {
std::error_code last_errno() { return {errno, std::system_category()}; }

clock::time_point deadline_after(std::chrono::milliseconds t) {
    return t.count() > 0 ? clock::now() + t : clock::time_point::max();
}
}  // namespace

void socket::close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    nonblocking_ = false;
    rcv_timeout_ = snd_timeout_ = std::chrono::milliseconds(0);
}

void socket::set_nonblocking(bool on) {
    if (nonblocking_ == on) return;
    int flags = ::fcntl(fd_, F_GETFL, 0);
    ::fcntl(fd_, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK));
    nonblocking_ = on;
}

void socket::set_timeout(int opt, std::chrono::milliseconds t, std::chrono::milliseconds& current) {
    if (t == current) return;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(t.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, opt, &tv, sizeof tv);
    current = t;
}

std::error_code socket::wait(wait_hook* hook, unsigned events, clock::time_point deadline) {
    if (hook) return hook->wait(fd_, events, deadline);
    // No hook: poll(2), needed only where a blocking call cannot express the wait.
    for (;;) {
        int ms = -1;
        if (deadline != clock::time_point::max()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
            if (left <= 0) return errc::timeout;
            ms = static_cast<int>(left > 0x7FFFFFFF ? 0x7FFFFFFF : left);
        }
        pollfd p{fd_, static_cast<short>(((events & wait_for::read) ? POLLIN : 0) | ((events & wait_for::write) ? POLLOUT : 0)), 0};
        int r = ::poll(&p, 1, ms);
        if (r > 0) return {};
        if (r == 0) return errc::timeout;
        if (errno != EINTR) return last_errno();
    }
}

std::error_code socket::connect_tcp(const std::string& host, std::uint16_t port, clock::time_point deadline,
                                    std::string& msg) {
    close();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    int g = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (g != 0) {
        hints.ai_flags = 0;  // AI_ADDRCONFIG hides loopback-only families on some hosts
        g = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    }
    if (g != 0) {
        msg = "cannot resolve '" + host + "': " + gai_strerror(g);
        return errc::host_not_found;
    }
    std::error_code ec = errc::connect_failed;
    wait_hook* hook = current_wait_hook();
    for (addrinfo* a = res; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            ec = last_errno();
            continue;
        }
        fd_ = fd;
        nonblocking_ = true;
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            ec = wait(hook, wait_for::write, deadline);
            if (!ec) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) ec = std::error_code(err, std::system_category());
            }
        } else if (r != 0) {
            ec = last_errno();
        } else {
            ec.clear();
        }
        if (!ec) break;
        close();
        if (ec == errc::timeout) break;
    }
    ::freeaddrinfo(res);
    if (ec) {
        msg = "cannot connect to " + host + ":" + service + ": " + ec.message();
        return ec == errc::timeout ? ec : std::error_code(errc::connect_failed);
    }
    return {};
}

std::error_code socket::connect_unix(const std::string& path, clock::time_point deadline, std::string& msg) {
    close();
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) {
        msg = "unix socket path too long: " + path;
        return errc::bad_config;
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        msg = "socket(): " + last_errno().message();
        return errc::connect_failed;
    }
    fd_ = fd;
    nonblocking_ = true;
    std::error_code ec;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno == EINPROGRESS || errno == EAGAIN) {
            ec = wait(current_wait_hook(), wait_for::write, deadline);
            if (!ec) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) ec = std::error_code(err, std::system_category());
            }
        } else {
            ec = last_errno();
        }
    }
    if (ec) {
        msg = "cannot connect to unix socket " + path + ": " + ec.message();
        close();
        return ec == errc::timeout ? ec : std::error_code(errc::connect_failed);
    }
    return {};
}

std::size_t socket::read_some(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout, std::error_code& ec) {
    wait_hook* hook = current_wait_hook();
    if (!hook) {
        set_nonblocking(false);
        set_timeout(SO_RCVTIMEO, timeout, rcv_timeout_);
    } else {
        set_nonblocking(true);
    }
    clock::time_point deadline{};
    bool have_deadline = false;
    for (;;) {
        ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            ec = last_errno();
            return 0;
        }
        if (!hook) {  // SO_RCVTIMEO expired
            ec = errc::timeout;
            return 0;
        }
        if (!have_deadline) {
            deadline = deadline_after(timeout);
            have_deadline = true;
        }
        if ((ec = wait(hook, wait_for::read, deadline))) return 0;
    }
}

std::size_t socket::write_some(std::span<const std::uint8_t> buf, std::chrono::milliseconds timeout,
                               std::error_code& ec) {
    wait_hook* hook = current_wait_hook();
    if (!hook) {
        set_nonblocking(false);
        set_timeout(SO_SNDTIMEO, timeout, snd_timeout_);
    } else {
        set_nonblocking(true);
    }
    clock::time_point deadline{};
    bool have_deadline = false;
    for (;;) {
        ssize_t n = ::send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            ec = last_errno();
            return 0;
        }
        if (!hook) {
            ec = errc::timeout;
            return 0;
        }
        if (!have_deadline) {
            deadline = deadline_after(timeout);
            have_deadline = true;
        }
        if ((ec = wait(hook, wait_for::write, deadline))) return 0;
    }
}

void socket::send_nowait(std::span<const std::uint8_t> buf) noexcept {
    if (fd_ >= 0 && !buf.empty()) (void)::send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace ambisql::io
