#pragma once
// A stream socket whose every wait goes through the thread's wait hook, or, with no hook,
// blocks in the kernel: a blocking recv/send with SO_RCVTIMEO/SO_SNDTIMEO as the timeout,
// so a round trip over TCP costs one send and one receive (over a unix socket, a poll(2)
// before the receive of a response: faster there).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "ambisql/config.hpp"
#include "ambisql/wait_hook.hpp"

namespace ambisql::io {

// How a receive with no hook waits beyond the usual: `spin`, poll the socket without
// sleeping for up to that long (a response is expected any moment); `nap`, if the socket
// is empty, sleep that long first so that data piles up (a bulk stream).
struct read_pacing {
    std::chrono::microseconds spin{};
    std::chrono::microseconds nap{};
};

// Waits until fd is ready for `events`, through `hook` or, with none, in poll(2).
std::error_code wait_fd(wait_hook* hook, int fd, unsigned events, clock::time_point deadline);

class socket {
public:
    socket() = default;
    ~socket();
    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;

    // The descriptor to wait on: the socket; while a host name is being looked up, the
    // eventfd the lookup signals; while a unix socket's connect waits to be tried again
    // (the server's listen queue was full: EAGAIN, nothing in progress), a timer's
    // descriptor. Wait for connect_events() on it.
    int fd() const noexcept { return resolve_fd_ >= 0 ? resolve_fd_ : retry_armed_ ? retry_fd_ : fd_; }
    bool is_open() const noexcept { return fd_ >= 0; }
    unsigned connect_events() const noexcept {
        return resolve_fd_ >= 0 || retry_armed_ ? wait_for::read : wait_for::write;
    }
    // Why a connect still in progress has not connected: empty, or what a timeout's
    // message should add (the listen queue that stayed full).
    std::string connect_pending_reason() const;
    void close() noexcept;
    // From any thread: shuts the connection down, so that a send, receive or wait in
    // progress on the owning thread ends at once (that thread then closes the socket).
    void interrupt() noexcept;

    // Connects, waiting through the hook (or poll(2)) until `deadline`; on failure `msg`
    // says what failed. Name lookup is not interruptible.
    std::error_code connect_tcp(const std::string& host, std::uint16_t port, clock::time_point deadline,
                                std::string& msg);
    std::error_code connect_unix(const std::string& path, clock::time_point deadline, std::string& msg);

    // The same without waiting: start_connect_*() starts a non-blocking connect (a host
    // name is first looked up on a thread of its own, so no caller's loop blocks on DNS);
    // while `in_progress` is true, wait for connect_events() on fd() and call
    // finish_connect(), which may start the next address and set `in_progress` again.
    std::error_code start_connect_tcp(const std::string& host, std::uint16_t port, bool& in_progress,
                                      std::string& msg);
    // What the next connects take from the settings: the local address TCP binds to
    // (config::bind_address; one that is not a numeric IPv4 or IPv6 address fails them
    // with errc::bad_config) and TCP keepalive (config::keepalive ...).
    void configure(const config& c) {
        bind_address_ = c.bind_address;
        keepalive_ = c.keepalive;
        keepalive_idle_ = c.keepalive_idle;
        keepalive_interval_ = c.keepalive_interval;
        keepalive_count_ = c.keepalive_count;
    }
    std::error_code start_connect_unix(const std::string& path, bool& in_progress, std::string& msg);
    std::error_code finish_connect(bool& in_progress, std::string& msg);

    // One non-blocking receive or send: n bytes, or would_block.
    enum class io_status { ok, would_block, error };
    io_status try_read(std::span<std::uint8_t> buf, std::size_t& n, std::error_code& ec) noexcept;
    io_status try_write(std::span<const std::uint8_t> buf, std::size_t& n, std::error_code& ec) noexcept;

    // One receive (0 = the peer closed) or one send, waiting up to `timeout` (0 = none)
    // per wait.
    std::size_t read_some(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout, std::error_code& ec,
                          read_pacing pace = {});
    std::size_t write_some(std::span<const std::uint8_t> buf, std::chrono::milliseconds timeout,
                           std::error_code& ec);
    // One send that never waits (for COM_QUIT on close).
    void send_nowait(std::span<const std::uint8_t> buf) noexcept;

private:
    std::error_code wait(wait_hook* hook, unsigned events, clock::time_point deadline);
    void set_nonblocking(bool on);
    void set_timeout(int opt, std::chrono::milliseconds t, std::chrono::milliseconds& current);

    template <class Call>
    std::size_t blocking_io(Call call, unsigned events, std::chrono::milliseconds timeout, std::error_code& ec);
    std::error_code connect_next(bool& in_progress);
    std::error_code connect_resolved(bool& in_progress, std::string& msg);
    std::error_code wait_connected(clock::time_point deadline, std::string& msg);
    bool arm_retry() noexcept;

    int fd_ = -1;
    std::mutex fd_mu_;  // fd_'s changes against interrupt() from another thread
    struct resolve_state;
    std::shared_ptr<resolve_state> resolving_;  // a host name lookup in flight
    int resolve_fd_ = -1;                       // its eventfd (owned by the state)
    std::string resolve_host_;
    // A unix connect refused for a full listen queue is tried again after retry_gap_
    // (doubling from 1 ms to 64 ms): a blocking connect would wait for room, and the
    // queue of a live server empties within milliseconds.
    int retry_fd_ = -1;  // a timerfd, made on first need, closed by the destructor
    bool retry_armed_ = false;
    std::chrono::milliseconds retry_gap_{1};
    bool nonblocking_ = false;
    bool just_sent_ = false;  // the last call was a send
    bool unix_ = false;       // a unix socket
    std::vector<std::vector<std::uint8_t>> addrs_;  // resolved addresses still to try
    std::size_t next_addr_ = 0;
    std::string target_;  // for messages
    std::string bind_address_;
    bool keepalive_ = false;
    std::chrono::seconds keepalive_idle_{0}, keepalive_interval_{0};
    int keepalive_count_ = 0;
    std::vector<std::uint8_t> bind_to_;  // bind_address_ resolved, for this connect
    std::chrono::milliseconds rcv_timeout_{0};
    std::chrono::milliseconds snd_timeout_{0};
};

}  // namespace ambisql::io
