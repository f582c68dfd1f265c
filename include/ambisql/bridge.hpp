#pragma once
// The bridge between coroutines and synchronous code on fibers, both directions.
//
//   // From a coroutine: run ordinary synchronous code on a fiber of the same loop.
//   asio::awaitable<int> api_handler(ambisql::hub& hub) {
//       co_return co_await ambisql::run_sync(hub, [&] { return repository.count_orders(); });
//   }
//   // From synchronous code on such a fiber: wait for an awaitable on the loop.
//   int inside_sync_code() { return ambisql::await_(some_awaitable()); }
//
// Database calls inside the synchronous code suspend only its fiber; the loop serves
// everything else meanwhile. Exceptions cross the bridge both ways.
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "ambisql/hub.hpp"

namespace ambisql {

namespace detail {
// The fiber running on this thread (nullptr on none); suspend it until resume().
fiber_rec* running_fiber() noexcept;
void suspend_running_fiber();
void resume_fiber(fiber_rec* f);  // from the loop, never from a fiber
}  // namespace detail

namespace detail {
template <class R>
struct run_sync_signature {
    using type = void(std::exception_ptr, R);
};
template <>
struct run_sync_signature<void> {
    using type = void(std::exception_ptr);
};

// The initiation of run_sync: spawns the fiber, connects the handler's cancellation slot
// to fiber::cancel(), and completes on the loop with (exception_ptr[, result]).
template <class R, class F>
struct run_sync_init {
    hub& h;
    F fn;

    template <class Handler>
    void operator()(Handler handler) {
        namespace asio = boost::asio;
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto hp = std::make_shared<Handler>(std::move(handler));
        fiber fb = h.spawn([&hh = h, hp, fn = std::move(fn)]() mutable {
            std::exception_ptr e;
            std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> r;
            try {
                if constexpr (std::is_void_v<R>) {
                    fn();
                    r.emplace(true);
                } else {
                    r.emplace(fn());
                }
            } catch (...) {
                e = std::current_exception();
            }
            asio::post(hh.context(), [hp, e, r = std::move(r)]() mutable {
                asio::get_associated_cancellation_slot(*hp).clear();
                if constexpr (std::is_void_v<R>)
                    std::move(*hp)(e);
                else
                    std::move(*hp)(e, r ? std::move(*r) : R{});
            });
        });
        // Cancelling the awaiting coroutine cancels the fiber's database operation: the
        // command is killed on the server and fn sees errc::cancelled.
        if (slot.is_connected()) slot.assign([fb](asio::cancellation_type) mutable { fb.cancel_all(); });
    }
};
}  // namespace detail

// Runs fn() on a new fiber of `h`; the awaitable completes with its result (or its
// exception). Cancellation of the awaiting coroutine (a cancellation slot, awaitable
// operators such as `run_sync(...) || timer`) reaches fn's current database operation
// through fiber::cancel().
template <class F, class R = std::invoke_result_t<F&>>
boost::asio::awaitable<R> run_sync(hub& h, F fn) {
    namespace asio = boost::asio;
    using sig = typename detail::run_sync_signature<R>::type;
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, sig>(
        detail::run_sync_init<R, F>{h, std::move(fn)}, asio::use_awaitable);
}

// On a fiber: suspends it until `aw` has completed on the loop, then returns its value
// or rethrows its exception. Outside a fiber it throws std::logic_error at once (waiting
// there would block the loop that has to run `aw`).
template <class T>
T await_(boost::asio::awaitable<T> aw) {
    namespace asio = boost::asio;
    detail::fiber_rec* f = detail::running_fiber();
    hub* h = hub::current();
    if (!f || !h)
        throw std::logic_error("ambisql::await_ called outside a fiber: it would block the event loop forever");
    std::exception_ptr err;
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> result;
    if constexpr (std::is_void_v<T>) {
        asio::co_spawn(h->context(), std::move(aw), [&, f](std::exception_ptr e) {
            err = e;
            result.emplace(true);
            detail::resume_fiber(f);
        });
    } else {
        asio::co_spawn(h->context(), std::move(aw), [&, f](std::exception_ptr e, T v) {
            err = e;
            if (!e) result.emplace(std::move(v));
            detail::resume_fiber(f);
        });
    }
    while (!err && !result) detail::suspend_running_fiber();
    if (err) std::rethrow_exception(err);
    if constexpr (!std::is_void_v<T>) return std::move(*result);
}

}  // namespace ambisql
