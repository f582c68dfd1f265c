// The fiber hub: Boost.Context fibers resumed from an Asio io_context. Socket waits
// go through one epoll instance of the hub's (one epoll_ctl per wait), whose own
// descriptor the io_context watches; deadlines and sleeps are Asio timers.
#include "ambisql/hub.hpp"

#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/context/fiber.hpp>
#include <cerrno>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ambisql/error.hpp"
#include "ambisql/wait_hook.hpp"

namespace ctx = boost::context;
namespace asio = boost::asio;

namespace ambisql {

namespace detail {

struct fiber_rec : std::enable_shared_from_this<fiber_rec> {
    explicit fiber_rec(asio::io_context& io) { timer.emplace(io); }
    ctx::fiber self;    // the fiber, while it is suspended
    ctx::fiber caller;  // the loop, while the fiber runs
    std::function<void()> body;
    bool finished = false;
    std::exception_ptr error;
    std::vector<std::shared_ptr<fiber_rec>> joiners;
    // Deadlines and sleeps; gone once the fiber finished (a handle may outlive the loop).
    std::optional<asio::steady_timer> timer;
    std::error_code wait_result;
    int waiting_fd = -1;
    bool cancel_requested = false;  // the next socket wait of this operation reports errc::cancelled
    bool cancel_all = false;        // ... and of every later operation (run_sync abandoned)
    int in_operation = 0;           // blocking-connection operations running on this fiber
    hub_impl* owner = nullptr;
};

namespace {
thread_local hub* current_hub = nullptr;
thread_local fiber_rec* current_fiber = nullptr;

// Fiber stacks with a PROT_NONE guard page below each (an overflow faults at once),
// kept for reuse: spawning a fiber per call (run_sync) must not cost an mmap each time.
class stack_pool {
public:
    explicit stack_pool(std::size_t size)
        : page_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))), size_((size + page_ - 1) / page_ * page_) {}
    ~stack_pool() {
        for (void* b : free_) ::munmap(b, size_ + page_);
    }
    ctx::stack_context allocate() {
        void* base;
        if (!free_.empty()) {
            base = free_.back();
            free_.pop_back();
        } else {
            base = ::mmap(nullptr, size_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
            if (base == MAP_FAILED) throw std::bad_alloc();
            ::mprotect(base, page_, PROT_NONE);
        }
        ctx::stack_context sc;
        sc.size = size_;
        sc.sp = static_cast<char*>(base) + page_ + size_;
        return sc;
    }
    void deallocate(ctx::stack_context& sc) noexcept {
        void* base = static_cast<char*>(sc.sp) - size_ - page_;
        if (free_.size() < 256)
            free_.push_back(base);
        else
            ::munmap(base, size_ + page_);
    }

private:
    std::size_t page_;
    std::size_t size_;
    std::vector<void*> free_;
};

// What Boost.Context copies into each fiber: a reference to the pool.
struct pooled_stack {
    stack_pool* pool;
    ctx::stack_context allocate() { return pool->allocate(); }
    void deallocate(ctx::stack_context& sc) noexcept { pool->deallocate(sc); }
};
}  // namespace

class hub_impl final : public wait_hook {
public:
    hub_impl(hub& h, asio::io_context& io, std::size_t stack) : h_(h), io_(io), ep_desc_(io), stacks_(stack) {
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
        ep_desc_.assign(ep_);
    }
    ~hub_impl() override {
        *alive_ = false;
        // Fibers still suspended are unwound (their destructors run) before their
        // records go away.
        auto live = std::move(live_);
        for (auto& rec : live) {
            if (!rec->finished && rec->self) {
                rec->self = ctx::fiber();
                rec->timer.reset();
                rec->finished = true;
                if (!rec->error)
                    rec->error = std::make_exception_ptr(std::logic_error("ambisql::hub destroyed before the fiber finished"));
            }
        }
        boost::system::error_code ignored;
        ep_desc_.cancel(ignored);
        ep_desc_.close(ignored);  // closes ep_
    }

    asio::io_context& io() noexcept { return io_; }

    std::shared_ptr<fiber_rec> spawn(std::function<void()> fn) {
        auto rec = std::make_shared<fiber_rec>(io_);
        rec->body = std::move(fn);
        rec->owner = this;
        fiber_rec* r = rec.get();
        rec->self = ctx::fiber(std::allocator_arg, pooled_stack{&stacks_},
                               [r](ctx::fiber&& caller) {
                                   r->caller = std::move(caller);
                                   try {
                                       r->body();
                                   } catch (const ctx::detail::forced_unwind&) {
                                       throw;  // the hub is unwinding this fiber's stack
                                   } catch (...) {
                                       r->error = std::current_exception();
                                   }
                                   r->finished = true;
                                   r->body = nullptr;
                                   return std::move(r->caller);
                               });
        live_.push_back(rec);
        schedule(rec);
        return rec;
    }

    // Resumes a fiber from the loop (never from another fiber).
    void schedule(const std::shared_ptr<fiber_rec>& rec) {
        asio::post(io_, [this, rec] { resume(rec.get()); });
    }

    void resume(fiber_rec* f) {
        if (f->finished || !f->self) return;
        hub* prev_hub = current_hub;
        fiber_rec* prev_fiber = current_fiber;
        wait_hook* prev_hook = set_wait_hook(this);
        current_hub = &h_;
        current_fiber = f;
        f->self = std::move(f->self).resume();
        current_hub = prev_hub;
        current_fiber = prev_fiber;
        set_wait_hook(prev_hook);
        if (f->finished) finished(f);
    }

    // On a fiber: back to the loop until resumed.
    static void suspend() {
        fiber_rec* f = current_fiber;
        f->caller = std::move(f->caller).resume();
    }

    std::error_code wait(int fd, unsigned events, clock::time_point deadline) override {
        fiber_rec* f = current_fiber;
        if (!f || f->owner != this) return errc::wait_failed;
        if (f->cancel_requested) {
            f->cancel_requested = false;
            return errc::cancelled;
        }
        epoll_event ev{};
        ev.events = ((events & wait_for::read) ? EPOLLIN : 0u) | ((events & wait_for::write) ? EPOLLOUT : 0u) |
                    EPOLLONESHOT | EPOLLRDHUP;
        ev.data.fd = fd;
        if (::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev) != 0) {
            if (errno != ENOENT || ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0)
                return {errno, std::system_category()};
        }
        if (static_cast<std::size_t>(fd) >= waiters_.size()) waiters_.resize(fd + 1, nullptr);
        waiters_[fd] = f;
        f->waiting_fd = fd;
        f->wait_result.clear();
        ++waiting_;
        arm();
        if (deadline != clock::time_point::max()) {
            f->timer->expires_at(deadline);
            f->timer->async_wait([this, keep = f->shared_from_this(), f, fd](boost::system::error_code ec) {
                if (ec || f->waiting_fd != fd) return;
                release(fd);
                f->wait_result = errc::timeout;
                resume(f);
            });
        }
        suspend();
        return f->wait_result;
    }

    void operation_begins() noexcept override {
        fiber_rec* f = current_fiber;
        if (!f || f->owner != this) return;
        ++f->in_operation;
        if (f->cancel_all) f->cancel_requested = true;
    }
    void operation_ends() noexcept override {
        fiber_rec* f = current_fiber;
        if (!f || f->owner != this) return;
        // A cancellation of this operation that no wait saw goes with it.
        if (--f->in_operation == 0) f->cancel_requested = false;
    }

    // From the loop or a fiber of this hub: the fiber's current socket wait, or the next
    // one of the operation it is running, reports errc::cancelled. Between operations it
    // does nothing, unless `all`: then every later operation of the fiber is cancelled too.
    void cancel(const std::shared_ptr<fiber_rec>& rec, bool all) {
        fiber_rec* f = rec.get();
        if (f->finished) return;
        if (all) f->cancel_all = true;
        if (f->waiting_fd < 0) {
            if (f->in_operation > 0 || all) f->cancel_requested = true;
            return;
        }
        release(f->waiting_fd);
        f->timer->cancel();
        f->wait_result = errc::cancelled;
        schedule(rec);
    }

    // While a fiber is parked on a primitive that another thread may release, the loop
    // must not run out of work.
    void hold_loop() {
        if (parked_++ == 0) work_.emplace(io_.get_executor());
    }
    void release_loop() {
        if (--parked_ == 0) work_.reset();
    }

    void sleep(clock::duration d) {
        fiber_rec* f = current_fiber;
        f->timer->expires_after(d);
        f->timer->async_wait([this, keep = f->shared_from_this(), f](boost::system::error_code ec) {
            if (!ec) resume(f);
        });
        suspend();
    }

    void yield() {
        fiber_rec* f = current_fiber;
        asio::post(io_, [this, f] { resume(f); });
        suspend();
    }

    void join(const std::shared_ptr<fiber_rec>& target) {
        fiber_rec* me = current_fiber;
        if (!target->finished) {
            for (auto& live : live_) {
                if (live.get() == me) {
                    target->joiners.push_back(live);
                    break;
                }
            }
            suspend();
        }
    }

private:
    void arm() {
        if (armed_ || waiting_ == 0) return;
        armed_ = true;
        ep_desc_.async_wait(asio::posix::stream_descriptor::wait_read, [this, alive = alive_](boost::system::error_code ec) {
            if (!*alive) return;  // the hub is gone
            armed_ = false;
            if (!ec) {
                epoll_event evs[128];
                int n = ::epoll_wait(ep_, evs, 128, 0);
                for (int i = 0; i < n; ++i) {
                    int fd = evs[i].data.fd;
                    if (static_cast<std::size_t>(fd) >= waiters_.size()) continue;
                    fiber_rec* f = waiters_[fd];
                    if (!f) continue;  // a wait that already timed out or was cancelled
                    release(fd);
                    f->timer->cancel();
                    resume(f);
                }
            }
            // Also after a cancellation by release(): a fiber may have started waiting
            // since, and found armed_ still set.
            arm();
        });
    }

    void release(int fd) {
        fiber_rec* f = waiters_[fd];
        waiters_[fd] = nullptr;
        if (f) {
            f->waiting_fd = -1;
            --waiting_;
        }
        if (waiting_ == 0 && armed_) {
            // Nothing left to wait for: do not keep the loop alive on the epoll descriptor.
            boost::system::error_code ignored;
            ep_desc_.cancel(ignored);
        }
    }

    void finished(fiber_rec* f) {
        f->timer.reset();
        for (auto& j : f->joiners) schedule(j);
        f->joiners.clear();
        for (std::size_t i = 0; i < live_.size(); ++i) {
            if (live_[i].get() == f) {
                live_[i] = std::move(live_.back());
                live_.pop_back();
                break;
            }
        }
    }

    hub& h_;
    asio::io_context& io_;
    asio::posix::stream_descriptor ep_desc_;
    int ep_ = -1;
    stack_pool stacks_;
    bool armed_ = false;
    std::size_t waiting_ = 0;
    std::vector<fiber_rec*> waiters_;  // by fd
    std::vector<std::shared_ptr<fiber_rec>> live_;
    std::size_t parked_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
};

}  // namespace detail

hub::hub(asio::io_context& io, std::size_t stack_size)
    : impl_(std::make_unique<detail::hub_impl>(*this, io, stack_size)) {}
hub::~hub() = default;

fiber hub::spawn(std::function<void()> fn) { return fiber(impl_->spawn(std::move(fn))); }
asio::io_context& hub::context() noexcept { return impl_->io(); }
hub* hub::current() noexcept { return detail::current_hub; }

bool fiber::done() const noexcept { return rec_ && rec_->finished; }

void fiber::cancel() {
    if (rec_) rec_->owner->cancel(rec_, false);
}

void fiber::cancel_all() {
    if (rec_) rec_->owner->cancel(rec_, true);
}

void fiber::join() {
    if (!rec_) throw std::logic_error("ambisql::fiber::join: no fiber");
    if (!rec_->finished) {
        if (!detail::current_fiber || detail::current_fiber->owner != rec_->owner)
            throw std::logic_error(
                "ambisql::fiber::join: the fiber has not finished, and waiting for it here would block the loop "
                "that runs it; join from a fiber of the same hub, or after the loop ran");
        if (detail::current_fiber == rec_.get()) throw std::logic_error("ambisql::fiber::join: a fiber cannot join itself");
        rec_->owner->join(rec_);
    }
    if (rec_->error) std::rethrow_exception(rec_->error);
}

namespace detail {
fiber_rec* running_fiber() noexcept { return current_fiber; }
void suspend_running_fiber() { hub_impl::suspend(); }
void resume_fiber(fiber_rec* f) { f->owner->resume(f); }
void post_resume(fiber_rec* f) {
    hub_impl* h = f->owner;
    asio::post(h->io(), [h, f] { h->resume(f); });
}
void start_fiber_timer(fiber_rec* f, clock::time_point deadline, std::function<void()> on_expiry) {
    f->timer->expires_at(deadline);
    f->timer->async_wait([keep = f->shared_from_this(), fn = std::move(on_expiry)](boost::system::error_code ec) {
        if (!ec) fn();
    });
}
void cancel_fiber_timer(fiber_rec* f) { f->timer->cancel(); }
void hold_loop(fiber_rec* f) { f->owner->hold_loop(); }
void release_loop(fiber_rec* f) { f->owner->release_loop(); }
}  // namespace detail

namespace this_fiber {

bool active() noexcept { return detail::current_fiber != nullptr; }

void yield() {
    if (detail::current_fiber)
        detail::current_fiber->owner->yield();
    else
        std::this_thread::yield();
}

void sleep_for(std::chrono::steady_clock::duration d) {
    if (detail::current_fiber)
        detail::current_fiber->owner->sleep(d);
    else
        std::this_thread::sleep_for(d);
}

}  // namespace this_fiber

}  // namespace ambisql
