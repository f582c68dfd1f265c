#pragma once
// Implicit async: fibers (green threads) on an Asio io_context.
//
//   boost::asio::io_context io;
//   ambisql::hub hub(io);
//   auto f = hub.spawn([&] {
//       ambisql::connection c(cfg);          // the ordinary blocking API...
//       c.query("SELECT SLEEP(1)");          // ...suspends only this fiber
//   });
//   io.run();                                // serves fibers, coroutines, timers alike
//   f.join();                                // rethrows what the fiber threw
//
// While a fiber runs, the hub's wait hook is installed on the thread, so every wait of
// the blocking API registers the socket with the loop and suspends the fiber. The same
// code on a plain thread blocks that thread, as always. The hub's io_context must be run
// by one thread at a time. fiber_sync.hpp has the mutex, condition variable and event
// that suspend a fiber instead of its thread.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace ambisql {

namespace detail {
struct fiber_rec;
class hub_impl;
}  // namespace detail

// A handle to a spawned fiber.
class fiber {
public:
    fiber() = default;
    bool valid() const noexcept { return rec_ != nullptr; }
    bool done() const noexcept;
    // From a fiber of the same hub: suspends until this fiber has finished, then
    // rethrows its exception if it threw. Elsewhere: only once done() (else throws
    // std::logic_error: waiting would block the loop that runs the fiber).
    void join();
    // Cancels the fiber's current database operation: its wait reports errc::cancelled,
    // which makes the blocking connection kill the command on the server and fail the
    // call with errc::cancelled, the connection staying usable (a connect is closed
    // instead). Between operations it does nothing: it never hits a later, unrelated one.
    // Call it on the hub's thread.
    void cancel();
    // Cancels the current operation and every later one of this fiber (run_sync does
    // this when its awaiting coroutine is cancelled: the routine is abandoned).
    void cancel_all();

private:
    friend class hub;
    explicit fiber(std::shared_ptr<detail::fiber_rec> r) : rec_(std::move(r)) {}
    std::shared_ptr<detail::fiber_rec> rec_;
};

class hub {
public:
    // Fibers get stacks of `stack_size` bytes with a guard page below (an overflow
    // faults at once instead of corrupting memory).
    explicit hub(boost::asio::io_context& io, std::size_t stack_size = 256 * 1024);
    ~hub();
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // Starts fn on a new fiber (it first runs from the loop, not inside spawn()).
    fiber spawn(std::function<void()> fn);
    boost::asio::io_context& context() noexcept;
    // The hub whose fiber is running on this thread, or nullptr.
    static hub* current() noexcept;
    detail::hub_impl& impl() noexcept { return *impl_; }

private:
    std::unique_ptr<detail::hub_impl> impl_;
};

namespace this_fiber {
// True on a hub's fiber.
bool active() noexcept;
// Lets the loop run everything else that is ready, then continues.
void yield();
// On a fiber: suspends it for d. Elsewhere: std::this_thread::sleep_for.
void sleep_for(std::chrono::steady_clock::duration d);
}  // namespace this_fiber

}  // namespace ambisql
