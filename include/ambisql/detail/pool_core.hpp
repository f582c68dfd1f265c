#pragma once
// The pool's bookkeeping, shared by every model (ambisql::pool for threads and fibers,
// ambisql::async_pool for Asio): which connections are idle, how many exist, who waits,
// when a connection has lived or idled too long. No I/O and no waiting here: a model asks
// take() and, when told to wait, parks its waiter its own way (a fiber_event, an Asio
// handler); give_back() and discard() hand connections, or the right to create one, to
// the longest waiter first. Thread-safe: one std::mutex, never held across I/O.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "ambisql/wait_hook.hpp"

namespace ambisql {

// How the pool treats its connections (the times are floors: checks happen when a
// connection is taken or given back).
struct pool_limits {
    std::size_t max_size = 16;  // connections open or being opened at most
    // Idle connections are not closed for idleness while no more than this many exist
    // (prefill() opens them; lifetimes still end and are replaced on demand).
    std::size_t min_size = 0;
    std::chrono::milliseconds acquire_timeout{10000};
    std::chrono::milliseconds idle_timeout{600000};   // an idle connection older than this is closed
    std::chrono::milliseconds max_lifetime{1800000};  // less up to 10% (jitter: they do not all expire at once)
    std::chrono::milliseconds ping_after_idle{1000};  // pinged before it is handed out after this long idle
    // Connects in flight at once, at most; an acquirer that would open one beyond that
    // waits for a connect to finish or a connection to come back. When a node dies, every
    // pool that held connections to it reconnects a few at a time instead of all at once
    // onto the survivors (HikariCP opens one at a time, from a single adder). 0 = no cap.
    std::size_t max_connecting = 2;
    // Within 10 s of a failure (a connection found broken, a connect that failed), each new
    // connect first waits a random time up to this, so that the pools that lost their
    // connections at the same moment do not all reconnect in the same instant. 0 = none.
    std::chrono::milliseconds connect_jitter{100};
};

struct pool_stats {
    std::size_t total = 0;    // open or being opened
    std::size_t idle = 0;     // ready in the pool
    std::size_t waiting = 0;  // acquirers waiting
    std::uint64_t created = 0, discarded = 0, timeouts = 0;
    std::uint64_t resets = 0;  // returns that needed a reset (the session had changed)
    std::size_t connecting = 0;  // connects in flight (at most limits.max_connecting)
};

namespace detail {

// Asks the server to report every change of session state, so that a returned connection
// whose session did not change needs no reset.
inline constexpr const char* track_state_sql = "SET SESSION session_track_state_change = ON";

template <class Conn>
struct pool_slot {
    Conn conn;
    clock::time_point expires{};   // max lifetime
    clock::time_point returned{};  // when it last became idle
    bool tracked = false;          // session_track_state_change is on: the server says when the session changes
    std::thread::id user{};        // the thread that gave it back last
};

template <class Conn>
struct pool_waiter {
    // With the pool's mutex held; must only record and signal. A null slot grants the
    // right to create a connection (counted in total already).
    virtual void grant(std::unique_ptr<pool_slot<Conn>> slot) = 0;

protected:
    ~pool_waiter() = default;
};

template <class Conn>
class pool_core {
public:
    using slot_ptr = std::unique_ptr<pool_slot<Conn>>;

    explicit pool_core(pool_limits l) : limits_(l), rng_(std::random_device{}()) {}

    const pool_limits& limits() const noexcept { return limits_; }

    enum class outcome { slot, create, wait, closed };
    // An idle connection (`out`), the right to create one, or (with `w`) a place in the
    // queue. Idle connections past their lifetime or idle timeout go to `expired`, for
    // the caller to close outside the lock.
    outcome take(slot_ptr& out, pool_waiter<Conn>* w, std::vector<slot_ptr>& expired) {
        const auto now = clock::now();
        std::lock_guard lk(m_);
        if (closed_) return outcome::closed;
        // The one this thread had last, if idle (its buffers still in this core's caches),
        // else the most recently used: warm, likely alive.
        const auto me = std::this_thread::get_id();
        for (auto it = idle_.rbegin(); it != idle_.rend(); ++it)
            if ((*it)->user == me) {
                if (it != idle_.rbegin()) std::swap(*it, idle_.back());
                break;
            }
        while (!idle_.empty()) {
            slot_ptr s = std::move(idle_.back());
            idle_.pop_back();
            if (now >= s->expires || (now - s->returned >= limits_.idle_timeout && total_ > limits_.min_size)) {
                --total_;
                ++discarded_;
                expired.push_back(std::move(s));
                continue;
            }
            out = std::move(s);
            return outcome::slot;
        }
        if (total_ < limits_.max_size && may_connect()) {
            ++total_;
            ++connecting_;
            return outcome::create;
        }
        if (!w) return outcome::wait;
        waiters_.push_back(w);
        return outcome::wait;
    }
    // The waiter gives up (timeout, cancellation): true when it was still queued; false
    // when a grant is already on its way to it (the waiter must then take it).
    bool withdraw(pool_waiter<Conn>* w) {
        std::lock_guard lk(m_);
        for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
            if (*it == w) {
                waiters_.erase(it);
                ++timeouts_;
                return true;
            }
        }
        return false;
    }
    // A healthy connection back: to the longest waiter, or idle.
    void give_back(slot_ptr s) {
        const auto now = clock::now();
        std::lock_guard lk(m_);
        s->returned = now;
        s->user = std::this_thread::get_id();
        if (closed_) {
            --total_;
            closing_.push_back(std::move(s));
            return;
        }
        if (!waiters_.empty()) {
            pool_waiter<Conn>* w = waiters_.front();
            waiters_.pop_front();
            w->grant(std::move(s));
            return;
        }
        idle_.push_back(std::move(s));
    }
    // A connection is gone (expired, closed by its user, or `failed`: found broken): its
    // place goes to the longest waiter as the right to create one (if the cap on connects
    // allows; else it waits for a connect to finish).
    void discard(bool failed = false) {
        std::lock_guard lk(m_);
        ++discarded_;
        if (failed) last_failure_ = clock::now();
        pass_place();
    }
    // The end of a connect take() or a grant allowed: a new connection, or a failure.
    void created() {
        std::lock_guard lk(m_);
        ++created_;
        --connecting_;
        grant_creates();
    }
    void connect_failed() {
        std::lock_guard lk(m_);
        ++discarded_;
        --connecting_;
        last_failure_ = clock::now();
        pass_place();
    }
    // How long a connect about to start waits first (connect_jitter, after a failure).
    clock::duration connect_delay() {
        std::lock_guard lk(m_);
        const auto j = limits_.connect_jitter.count();
        if (j <= 0 || last_failure_ == clock::time_point{} || clock::now() - last_failure_ > std::chrono::seconds(10))
            return clock::duration::zero();
        std::uniform_int_distribution<long long> d(0, j * 1000);
        return std::chrono::microseconds(d(rng_));
    }
    void reset_done() {
        std::lock_guard lk(m_);
        ++resets_;
    }
    // A new slot's lifetime: max_lifetime less up to 10%.
    clock::time_point expiry() {
        std::lock_guard lk(m_);
        const auto span = limits_.max_lifetime.count();
        std::uniform_int_distribution<long long> d(0, span / 10);
        return clock::now() + std::chrono::milliseconds(span - d(rng_));
    }
    bool idle_too_long(const pool_slot<Conn>& s) const noexcept {
        return clock::now() - s.returned >= limits_.ping_after_idle;
    }
    // Closes the pool: idle connections are handed back for closing; every waiter is
    // granted a null slot with closed() now true (nothing to create).
    std::vector<slot_ptr> close() {
        std::lock_guard lk(m_);
        closed_ = true;
        std::vector<slot_ptr> out;
        for (auto& s : idle_) out.push_back(std::move(s));
        total_ -= idle_.size();
        idle_.clear();
        for (auto& s : closing_) out.push_back(std::move(s));
        closing_.clear();
        while (!waiters_.empty()) {
            pool_waiter<Conn>* w = waiters_.front();
            waiters_.pop_front();
            w->grant(nullptr);
        }
        return out;
    }
    bool closed() const {
        std::lock_guard lk(m_);
        return closed_;
    }
    pool_stats stats() const {
        std::lock_guard lk(m_);
        return {total_, idle_.size(), waiters_.size(), created_, discarded_, timeouts_, resets_, connecting_};
    }

private:
    bool may_connect() const noexcept { return limits_.max_connecting == 0 || connecting_ < limits_.max_connecting; }
    // A place freed (under the lock): to the longest waiter as the right to connect, if
    // the cap allows; else it is gone.
    void pass_place() {
        if (!closed_ && !waiters_.empty() && may_connect()) {
            pool_waiter<Conn>* w = waiters_.front();
            waiters_.pop_front();
            ++connecting_;
            w->grant(nullptr);
            return;
        }
        --total_;
        grant_creates();
    }
    // Waiters whose connect the cap held back: as many as it allows now.
    void grant_creates() {
        while (!closed_ && !waiters_.empty() && total_ < limits_.max_size && may_connect()) {
            pool_waiter<Conn>* w = waiters_.front();
            waiters_.pop_front();
            ++total_;
            ++connecting_;
            w->grant(nullptr);
        }
    }
    pool_limits limits_;
    mutable std::mutex m_;
    std::vector<slot_ptr> idle_;
    std::vector<slot_ptr> closing_;
    std::deque<pool_waiter<Conn>*> waiters_;
    std::size_t total_ = 0;
    std::size_t connecting_ = 0;
    clock::time_point last_failure_{};
    std::uint64_t created_ = 0, discarded_ = 0, timeouts_ = 0, resets_ = 0;
    bool closed_ = false;
    std::mt19937_64 rng_;
};

}  // namespace detail
}  // namespace ambisql
