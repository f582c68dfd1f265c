#pragma once
// Synchronisation that suspends a fiber instead of blocking the thread its loop runs on.
//
//   ambisql::fiber_mutex m;
//   ambisql::fiber_condition_variable cv;
//   std::deque<job> jobs;
//   hub.spawn([&] {                       // a consumer fiber
//       std::unique_lock lk(m);
//       cv.wait(lk, [&] { return !jobs.empty(); });
//       ...
//   });
//
// On a hub's fiber, a wait suspends only that fiber (the loop keeps serving sockets,
// timers and coroutines); on a plain thread it blocks that thread. Fibers of any hub and
// plain threads may share one primitive: a waker on another thread resumes a fiber by
// posting to its hub's loop. Waits of fibers are not interrupted by fiber::cancel().
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "ambisql/wait_hook.hpp"

namespace ambisql {

namespace detail {
struct sync_waiter;
// The parties blocked on one primitive; guarded by the primitive's std::mutex.
class wait_list {
public:
    // With `lk` held: parks the calling fiber or thread until woken or `deadline`
    // (lk is released meanwhile and held again on return). true: woken.
    bool park(std::unique_lock<std::mutex>& lk, clock::time_point deadline);
    bool wake_one();  // with the lock held; false when nobody waits
    void wake_all();  // with the lock held

private:
    std::deque<std::shared_ptr<sync_waiter>> q_;
};
}  // namespace detail

// A mutex whose lock() suspends a fiber (FIFO hand-over: the longest waiter gets it next).
// Not recursive.
class fiber_mutex {
public:
    fiber_mutex() = default;
    fiber_mutex(const fiber_mutex&) = delete;
    fiber_mutex& operator=(const fiber_mutex&) = delete;

    void lock();
    bool try_lock();
    void unlock();

private:
    std::mutex m_;
    bool locked_ = false;
    detail::wait_list waiters_;
};

// A condition variable for any lock (std::unique_lock<fiber_mutex> in particular).
// Wake-ups may be spurious: wait with a predicate.
class fiber_condition_variable {
public:
    fiber_condition_variable() = default;
    fiber_condition_variable(const fiber_condition_variable&) = delete;
    fiber_condition_variable& operator=(const fiber_condition_variable&) = delete;

    void notify_one();
    void notify_all();

    template <class Lock>
    void wait(Lock& lk) {
        (void)wait_until(lk, clock::time_point::max());
    }
    template <class Lock, class Pred>
    void wait(Lock& lk, Pred pred) {
        while (!pred()) wait(lk);
    }
    template <class Lock>
    std::cv_status wait_until(Lock& lk, clock::time_point deadline) {
        std::unique_lock<std::mutex> own(m_);
        lk.unlock();  // after joining the list under m_: no notify is lost
        bool woken = waiters_.park(own, deadline);
        own.unlock();
        lk.lock();
        return woken ? std::cv_status::no_timeout : std::cv_status::timeout;
    }
    template <class Lock, class Pred>
    bool wait_until(Lock& lk, clock::time_point deadline, Pred pred) {
        while (!pred())
            if (wait_until(lk, deadline) == std::cv_status::timeout) return pred();
        return true;
    }
    template <class Lock, class Rep, class Period>
    std::cv_status wait_for(Lock& lk, std::chrono::duration<Rep, Period> d) {
        return wait_until(lk, clock::now() + std::chrono::duration_cast<clock::duration>(d));
    }
    template <class Lock, class Rep, class Period, class Pred>
    bool wait_for(Lock& lk, std::chrono::duration<Rep, Period> d, Pred pred) {
        return wait_until(lk, clock::now() + std::chrono::duration_cast<clock::duration>(d), std::move(pred));
    }

private:
    std::mutex m_;
    detail::wait_list waiters_;
};

// A manual-reset event: set() releases every waiter, now and later, until reset().
class fiber_event {
public:
    fiber_event() = default;
    fiber_event(const fiber_event&) = delete;
    fiber_event& operator=(const fiber_event&) = delete;

    void set();
    void reset();
    bool is_set();
    void wait();
    // false: the deadline passed first.
    bool wait_until(clock::time_point deadline);
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> d) {
        return wait_until(clock::now() + std::chrono::duration_cast<clock::duration>(d));
    }

private:
    std::mutex m_;
    bool set_ = false;
    detail::wait_list waiters_;
};

}  // namespace ambisql
