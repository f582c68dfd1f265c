// Fiber-aware mutex, condition variable and event: one wait list that parks fibers on
// their loop and threads on a condition variable.
#include "ambisql/fiber_sync.hpp"

#include <algorithm>
#include <atomic>

#include "fiber/internal.hpp"

namespace ambisql {

namespace detail {

struct sync_waiter {
    enum : int { waiting, woken, timed_out };
    fiber_rec* fiber = nullptr;  // nullptr: a thread
    std::condition_variable cv;  // threads only
    std::atomic<int> state{waiting};
};

bool wait_list::park(std::unique_lock<std::mutex>& lk, clock::time_point deadline) {
    auto w = std::make_shared<sync_waiter>();
    w->fiber = running_fiber();
    q_.push_back(w);
    const bool timed = deadline != clock::time_point::max();
    if (!w->fiber) {
        auto ready = [&] { return w->state.load() != sync_waiter::waiting; };
        if (timed) {
            if (!w->cv.wait_until(lk, deadline, ready)) {
                q_.erase(std::find(q_.begin(), q_.end(), w));
                w->state = sync_waiter::timed_out;
            }
        } else {
            w->cv.wait(lk, ready);
        }
        return w->state.load() == sync_waiter::woken;
    }
    if (timed) {
        // Runs on the fiber's loop, where the fiber itself cannot be running.
        start_fiber_timer(w->fiber, deadline, [this, w, m = lk.mutex()] {
            if (w->state.load() != sync_waiter::waiting) return;  // woken meanwhile
            {
                std::lock_guard<std::mutex> g(*m);
                if (w->state.load() != sync_waiter::waiting) return;
                q_.erase(std::find(q_.begin(), q_.end(), w));
                w->state = sync_waiter::timed_out;
            }
            resume_fiber(w->fiber);
        });
    }
    lk.unlock();
    hold_loop(w->fiber);
    while (w->state.load() == sync_waiter::waiting) suspend_running_fiber();
    release_loop(w->fiber);
    if (timed) cancel_fiber_timer(w->fiber);
    lk.lock();
    return w->state.load() == sync_waiter::woken;
}

bool wait_list::wake_one() {
    if (q_.empty()) return false;
    std::shared_ptr<sync_waiter> w = std::move(q_.front());
    q_.pop_front();
    w->state = sync_waiter::woken;
    if (w->fiber)
        post_resume(w->fiber);
    else
        w->cv.notify_one();
    return true;
}

void wait_list::wake_all() {
    while (wake_one()) {
    }
}

}  // namespace detail

void fiber_mutex::lock() {
    std::unique_lock<std::mutex> lk(m_);
    if (!locked_) {
        locked_ = true;
        return;
    }
    waiters_.park(lk, clock::time_point::max());  // woken = handed the lock
}

bool fiber_mutex::try_lock() {
    std::lock_guard<std::mutex> lk(m_);
    if (locked_) return false;
    locked_ = true;
    return true;
}

void fiber_mutex::unlock() {
    std::lock_guard<std::mutex> lk(m_);
    if (!waiters_.wake_one()) locked_ = false;
}

void fiber_condition_variable::notify_one() {
    std::lock_guard<std::mutex> lk(m_);
    waiters_.wake_one();
}

void fiber_condition_variable::notify_all() {
    std::lock_guard<std::mutex> lk(m_);
    waiters_.wake_all();
}

void fiber_event::set() {
    std::lock_guard<std::mutex> lk(m_);
    set_ = true;
    waiters_.wake_all();
}

void fiber_event::reset() {
    std::lock_guard<std::mutex> lk(m_);
    set_ = false;
}

bool fiber_event::is_set() {
    std::lock_guard<std::mutex> lk(m_);
    return set_;
}

void fiber_event::wait() { (void)wait_until(clock::time_point::max()); }

bool fiber_event::wait_until(clock::time_point deadline) {
    std::unique_lock<std::mutex> lk(m_);
    while (!set_)
        if (!waiters_.park(lk, deadline)) return set_;
    return true;
}

}  // namespace ambisql
