#pragma once
// The one place where ambisql's blocking API waits.
//
// Every wait of a blocking connection (connect, TLS, query, row streaming) goes through
// the wait hook of the calling thread. With no hook, the thread blocks in the kernel.
// A green-thread scheduler installs a hook that suspends the current green thread until
// the socket is ready, which makes every blocking call cooperative.
#include <chrono>
#include <system_error>

namespace ambisql {

namespace wait_for {
inline constexpr unsigned read = 1;
inline constexpr unsigned write = 2;
}  // namespace wait_for

using clock = std::chrono::steady_clock;

class wait_hook {
public:
    virtual ~wait_hook() = default;
    // Waits until fd is ready for `events` (wait_for::read / wait_for::write) or until
    // `deadline` (clock::time_point::max() for none). Return {} when ready (spurious
    // wake-ups are fine), errc::timeout at the deadline, errc::cancelled to cancel the
    // operation, or any other error to fail the operation (the connection is then closed).
    //
    // errc::cancelled (return it once per cancellation): a running command is killed on
    // the server (KILL QUERY over a second connection, whose waits come through this
    // hook too), the rest of its response is read, and the call fails with
    // errc::cancelled while the connection stays usable; a cancelled connect closes.
    virtual std::error_code wait(int fd, unsigned events, clock::time_point deadline) = 0;

    // Around each operation of a blocking connection on this thread (its waits come in
    // between): a green-thread system can tie a cancellation to the operation that is
    // running, so that one requested between operations does not hit a later, unrelated
    // one.
    virtual void operation_begins() noexcept {}
    virtual void operation_ends() noexcept {}
};

// Installs `hook` for the calling thread (nullptr removes it); returns the previous one.
wait_hook* set_wait_hook(wait_hook* hook) noexcept;
wait_hook* current_wait_hook() noexcept;

// Installs a hook for a scope.
class scoped_wait_hook {
public:
    explicit scoped_wait_hook(wait_hook* h) noexcept : prev_(set_wait_hook(h)) {}
    ~scoped_wait_hook() { set_wait_hook(prev_); }
    scoped_wait_hook(const scoped_wait_hook&) = delete;
    scoped_wait_hook& operator=(const scoped_wait_hook&) = delete;

private:
    wait_hook* prev_;
};

}  // namespace ambisql
