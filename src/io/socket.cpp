#include "io/socket.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "ambisql/error.hpp"

namespace ambisql::io {

namespace {
std::error_code last_errno() { return {errno, std::system_category()}; }

clock::time_point deadline_after(std::chrono::milliseconds t) {
    return t.count() > 0 ? clock::now() + t : clock::time_point::max();
}
}  // namespace

// A host name lookup on a thread of its own: the thread fills this in and signals the
// eventfd; whoever lets go of it last (the socket, or the thread of a lookup the socket
// gave up on) closes the eventfd.
struct socket::resolve_state {
    std::mutex m;
    bool done = false;
    int gai = 0;
    std::vector<std::vector<std::uint8_t>> addrs;
    int efd = -1;
    ~resolve_state() {
        if (efd >= 0) ::close(efd);
    }
};

namespace {
int lookup(const std::string& host, const std::string& service, int flags,
           std::vector<std::vector<std::uint8_t>>& addrs) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = flags;
    addrinfo* res = nullptr;
    int g = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (g != 0) return g;
    for (addrinfo* a = res; a; a = a->ai_next) {
        auto* p = reinterpret_cast<const std::uint8_t*>(a->ai_addr);
        addrs.emplace_back(p, p + a->ai_addrlen);
    }
    ::freeaddrinfo(res);
    return 0;
}
}  // namespace

socket::~socket() {
    close();
    if (retry_fd_ >= 0) ::close(retry_fd_);
}

void socket::close() noexcept {
    if (fd_ >= 0) {
        std::lock_guard lock(fd_mu_);  // interrupt() may be reading fd_ on another thread
        ::close(fd_);
        fd_ = -1;
    }
    resolving_.reset();
    resolve_fd_ = -1;
    retry_armed_ = false;
    nonblocking_ = false;
    just_sent_ = false;
    rcv_timeout_ = snd_timeout_ = std::chrono::milliseconds(0);
}

void socket::interrupt() noexcept {
    std::lock_guard lock(fd_mu_);
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
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
    return wait_fd(hook, fd(), events, deadline);
}

std::error_code wait_fd(wait_hook* hook, int fd, unsigned events, clock::time_point deadline) {
    if (hook) return hook->wait(fd, events, deadline);
    // No hook: poll(2), needed only where a blocking call cannot express the wait.
    for (;;) {
        int ms = -1;
        if (deadline != clock::time_point::max()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
            if (left <= 0) return errc::timeout;
            ms = static_cast<int>(left > 0x7FFFFFFF ? 0x7FFFFFFF : left);
        }
        pollfd p{fd, static_cast<short>(((events & wait_for::read) ? POLLIN : 0) | ((events & wait_for::write) ? POLLOUT : 0)), 0};
        int r = ::poll(&p, 1, ms);
        if (r > 0) return {};
        if (r == 0) return errc::timeout;
        if (errno != EINTR) return last_errno();
    }
}

std::error_code socket::start_connect_tcp(const std::string& host, std::uint16_t port, bool& in_progress,
                                          std::string& msg) {
    close();
    addrs_.clear();
    next_addr_ = 0;
    const std::string service = std::to_string(port);
    target_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + service;
    resolve_host_ = host;
    bind_to_.clear();
    if (!bind_address_.empty()) {
        std::vector<std::vector<std::uint8_t>> local;
        if (lookup(bind_address_, "0", AI_NUMERICHOST | AI_PASSIVE, local) != 0 || local.empty()) {
            msg = "bad bind address '" + bind_address_ + "': not an IPv4 or IPv6 address";
            return errc::bad_config;
        }
        bind_to_ = std::move(local.front());
    }
    // An address needs no lookup.
    if (lookup(host, service, AI_NUMERICHOST, addrs_) == 0) return connect_resolved(in_progress, msg);
    // A name: looked up on a thread of its own, whose eventfd stands in for the socket.
    auto st = std::make_shared<resolve_state>();
    st->efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    bool started = st->efd >= 0;
    if (started) {
        try {
            std::thread([st, host, service] {
                std::vector<std::vector<std::uint8_t>> addrs;
                int g = lookup(host, service, 0, addrs);
                {
                    std::lock_guard<std::mutex> lock(st->m);
                    st->gai = g;
                    st->addrs = std::move(addrs);
                    st->done = true;
                }
                std::uint64_t one = 1;
                (void)!::write(st->efd, &one, sizeof one);
            }).detach();
        } catch (const std::system_error&) {
            started = false;
        }
    }
    if (!started) {  // no thread to be had: look it up here
        if (int g = lookup(host, service, 0, addrs_)) {
            msg = "cannot resolve '" + host + "': " + gai_strerror(g);
            return errc::host_not_found;
        }
        return connect_resolved(in_progress, msg);
    }
    resolving_ = std::move(st);
    resolve_fd_ = resolving_->efd;
    in_progress = true;
    return {};
}

std::error_code socket::connect_resolved(bool& in_progress, std::string& msg) {
    std::error_code ec = connect_next(in_progress);
    if (ec) msg = "cannot connect to " + target_ + ": " + ec.message();
    return ec ? std::error_code(errc::connect_failed) : ec;
}

std::error_code socket::start_connect_unix(const std::string& path, bool& in_progress, std::string& msg) {
    close();
    addrs_.clear();
    next_addr_ = 0;
    retry_gap_ = std::chrono::milliseconds(1);
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) {
        msg = "unix socket path too long: " + path;
        return errc::bad_config;
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    auto* p = reinterpret_cast<const std::uint8_t*>(&addr);
    addrs_.emplace_back(p, p + sizeof addr);
    target_ = "unix socket " + path;
    std::error_code ec = connect_next(in_progress);
    if (ec) msg = "cannot connect to " + target_ + ": " + ec.message();
    return ec ? std::error_code(errc::connect_failed) : ec;
}

// Starts a connect to the next address; errors move on to the address after it.
std::error_code socket::connect_next(bool& in_progress) {
    std::error_code ec = errc::connect_failed;
    in_progress = false;
    while (next_addr_ < addrs_.size()) {
        const auto& a = addrs_[next_addr_++];
        auto* sa = reinterpret_cast<const sockaddr*>(a.data());
        close();
        int fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            ec = last_errno();
            continue;
        }
        {
            std::lock_guard lock(fd_mu_);
            fd_ = fd;
        }
        nonblocking_ = true;
        unix_ = sa->sa_family == AF_UNIX;
        if (sa->sa_family != AF_UNIX) {
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (keepalive_) {  // probes after idleness; the same total bounds unacknowledged data
                const int idle = static_cast<int>(keepalive_idle_.count());
                const int interval = static_cast<int>(keepalive_interval_.count());
                const unsigned total_ms = static_cast<unsigned>(idle + interval * keepalive_count_) * 1000u;
                ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
                ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
                ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
                ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keepalive_count_, sizeof keepalive_count_);
                ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &total_ms, sizeof total_ms);
            }
            if (!bind_to_.empty()) {  // from the bind address: one of its family, or none
                auto* local = reinterpret_cast<const sockaddr*>(bind_to_.data());
                if (local->sa_family != sa->sa_family) {
                    ec = std::make_error_code(std::errc::address_family_not_supported);
                    continue;
                }
                if (::bind(fd, local, static_cast<socklen_t>(bind_to_.size())) != 0) {
                    ec = last_errno();
                    continue;
                }
            }
        }
        if (::connect(fd, sa, static_cast<socklen_t>(a.size())) == 0) return {};
        if (errno == EINPROGRESS) {
            in_progress = true;
            return {};
        }
        // A unix socket's full listen queue: nothing is in progress (waiting on the socket
        // would wake at once); the connect is made again when a timer says so.
        if (sa->sa_family == AF_UNIX && errno == EAGAIN) {
            if (arm_retry()) {
                --next_addr_;
                in_progress = true;
                return {};
            }
            ec = std::make_error_code(std::errc::resource_unavailable_try_again);
            continue;
        }
        ec = last_errno();
    }
    close();
    return ec;
}

std::error_code socket::finish_connect(bool& in_progress, std::string& msg) {
    in_progress = false;
    if (resolving_) {
        std::shared_ptr<resolve_state> st = resolving_;
        {
            std::lock_guard<std::mutex> lock(st->m);
            if (!st->done) {  // a spurious wake-up
                in_progress = true;
                return {};
            }
        }
        resolving_.reset();
        resolve_fd_ = -1;
        if (st->gai != 0) {
            msg = "cannot resolve '" + resolve_host_ + "': " + gai_strerror(st->gai);
            return errc::host_not_found;
        }
        addrs_ = std::move(st->addrs);
        return connect_resolved(in_progress, msg);
    }
    if (retry_armed_) {
        std::uint64_t expirations = 0;
        if (::read(retry_fd_, &expirations, sizeof expirations) != sizeof expirations) {  // a spurious wake-up
            in_progress = true;
            return {};
        }
        retry_armed_ = false;
        retry_gap_ = std::min(retry_gap_ * 2, std::chrono::milliseconds(64));
        std::error_code ec = connect_next(in_progress);  // the same address, on a new socket
        if (ec) {
            msg = "cannot connect to " + target_ + ": " + ec.message();
            return errc::connect_failed;
        }
        return {};
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
        // Writable and no error means connected; a spurious wake-up is caught here.
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, 0) == 0) {
            in_progress = true;
            return {};
        }
        return {};
    }
    std::error_code failed(err, std::system_category());
    std::error_code ec = connect_next(in_progress);  // try the next address, if any
    if (ec) {
        msg = "cannot connect to " + target_ + ": " + failed.message();
        return errc::connect_failed;
    }
    return {};
}

bool socket::arm_retry() noexcept {
    if (retry_fd_ < 0) retry_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (retry_fd_ < 0) return false;
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(retry_gap_.count() / 1000);
    when.it_value.tv_nsec = static_cast<long>((retry_gap_.count() % 1000) * 1000000);
    if (::timerfd_settime(retry_fd_, 0, &when, nullptr) != 0) return false;
    retry_armed_ = true;
    return true;
}

std::string socket::connect_pending_reason() const {
    return retry_armed_ ? " (the server's listen queue stayed full)" : std::string();
}

std::error_code socket::wait_connected(clock::time_point deadline, std::string& msg) {
    wait_hook* hook = current_wait_hook();
    bool in_progress = true;
    while (in_progress) {
        if (auto ec = wait(hook, connect_events(), deadline)) {
            msg = "cannot connect to " + target_ + ": " +
                  (ec == errc::timeout ? "timed out" + connect_pending_reason() : ec.message());
            close();
            return ec == errc::timeout || ec == errc::cancelled ? ec : std::error_code(errc::connect_failed);
        }
        if (auto ec = finish_connect(in_progress, msg)) return ec;
    }
    return {};
}

std::error_code socket::connect_tcp(const std::string& host, std::uint16_t port, clock::time_point deadline,
                                    std::string& msg) {
    bool in_progress = false;
    if (auto ec = start_connect_tcp(host, port, in_progress, msg)) return ec;
    return in_progress ? wait_connected(deadline, msg) : std::error_code();
}

std::error_code socket::connect_unix(const std::string& path, clock::time_point deadline, std::string& msg) {
    bool in_progress = false;
    if (auto ec = start_connect_unix(path, in_progress, msg)) return ec;
    return in_progress ? wait_connected(deadline, msg) : std::error_code();
}

namespace {
// One syscall (recv or send), retried on EINTR.
template <class Call>
socket::io_status attempt(Call call, std::size_t& n, std::error_code& ec) noexcept {
    for (;;) {
        ssize_t r = call();
        if (r >= 0) {
            n = static_cast<std::size_t>(r);
            return socket::io_status::ok;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return socket::io_status::would_block;
        ec = last_errno();
        return socket::io_status::error;
    }
}
}  // namespace

socket::io_status socket::try_read(std::span<std::uint8_t> buf, std::size_t& n, std::error_code& ec) noexcept {
    set_nonblocking(true);
    return attempt([&] { return ::recv(fd_, buf.data(), buf.size(), 0); }, n, ec);
}

socket::io_status socket::try_write(std::span<const std::uint8_t> buf, std::size_t& n, std::error_code& ec) noexcept {
    set_nonblocking(true);
    return attempt([&] { return ::send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL); }, n, ec);
}

// With no hook: a blocking call whose socket timeout (SO_RCVTIMEO / SO_SNDTIMEO) bounds
// the wait. With a hook: non-blocking calls, waiting through the hook in between.
template <class Call>
std::size_t socket::blocking_io(Call call, unsigned events, std::chrono::milliseconds timeout, std::error_code& ec) {
    wait_hook* hook = current_wait_hook();
    if (!hook) {
        set_nonblocking(false);
        if (events == wait_for::read)
            set_timeout(SO_RCVTIMEO, timeout, rcv_timeout_);
        else
            set_timeout(SO_SNDTIMEO, timeout, snd_timeout_);
    } else {
        set_nonblocking(true);
    }
    clock::time_point deadline = clock::time_point::min();
    // Right after a request went out its response cannot be there yet: with a hook,
    // wait first instead of making a receive that fails with EAGAIN. On a unix socket the
    // same holds without a hook: poll(2), then a receive that finds the response, is
    // measurably faster there than a receive that blocks (scripts/bench: ~5-7% more
    // point selects per second); on TCP the blocking receive is the faster one.
    const bool first_response_wait = events == wait_for::read && just_sent_;
    bool try_first = !(first_response_wait && (hook || unix_));
    just_sent_ = events == wait_for::write;
    if (!try_first && !hook) {
        deadline = deadline_after(timeout);
        if ((ec = wait(nullptr, events, deadline))) return 0;
        try_first = true;
    }
    for (;;) {
        std::size_t n = 0;
        if (try_first) {
            switch (attempt(call, n, ec)) {
                case io_status::ok: return n;
                case io_status::error: return 0;
                case io_status::would_block: break;
            }
        }
        try_first = true;
        if (!hook) {  // the socket timeout expired
            ec = errc::timeout;
            return 0;
        }
        if (deadline == clock::time_point::min()) deadline = deadline_after(timeout);
        if ((ec = wait(hook, events, deadline))) return 0;
    }
}

std::size_t socket::read_some(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout, std::error_code& ec,
                              read_pacing pace) {
    if ((pace.spin.count() > 0 || pace.nap.count() > 0) && !current_wait_hook()) {
        const auto until = clock::now() + pace.spin;
        for (;;) {
            std::size_t n = 0;
            switch (attempt([&] { return ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT); }, n, ec)) {
                case io_status::ok: just_sent_ = false; return n;
                case io_status::error: return 0;
                case io_status::would_block: break;
            }
            if (clock::now() >= until) break;
        }
        if (pace.nap.count() > 0) {
            const auto us = std::min<std::int64_t>(pace.nap.count(), 999999);
            timespec nap{0, static_cast<long>(us * 1000)};
            ::nanosleep(&nap, nullptr);  // EINTR: the wait below covers the rest
        }
    }
    return blocking_io([&] { return ::recv(fd_, buf.data(), buf.size(), 0); }, wait_for::read, timeout, ec);
}

// With no hook, not a blocking send bounded by SO_SNDTIMEO: such a send copies what fits,
// then waits the whole timeout and returns that part as progress, so a peer that vanished
// cost two timeouts per large write (the test: 4.1 s for a 2 s write timeout). A send that
// does not block, then poll(2) until the socket takes more, bounds each wait exactly; a
// request that fits costs the same one system call.
std::size_t socket::write_some(std::span<const std::uint8_t> buf, std::chrono::milliseconds timeout,
                               std::error_code& ec) {
    if (current_wait_hook())
        return blocking_io([&] { return ::send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL); }, wait_for::write,
                           timeout, ec);
    just_sent_ = true;
    for (;;) {
        std::size_t n = 0;
        switch (attempt([&] { return ::send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT); }, n, ec)) {
            case io_status::ok: return n;
            case io_status::error: return 0;
            case io_status::would_block: break;
        }
        if ((ec = wait(nullptr, wait_for::write, deadline_after(timeout)))) return 0;
    }
}

void socket::send_nowait(std::span<const std::uint8_t> buf) noexcept {
    if (fd_ >= 0 && !buf.empty()) (void)::send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace ambisql::io
