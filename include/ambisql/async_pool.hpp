#pragma once
// The connection pool for Asio (C++20 coroutines, callbacks, any completion token).
//
//   ambisql::async_pool pool(io.get_executor(), pc);      // pc: an ambisql::pool_config
//   asio::co_spawn(io, [&]() -> asio::awaitable<void> {
//       auto conn = co_await pool.async_acquire(asio::use_awaitable);
//       co_await conn->async_query("UPDATE ...", asio::use_awaitable);
//   }, asio::detached);                                    // given back when conn goes
//
// The same bookkeeping as ambisql::pool (detail::pool_core): waiters in order, idle and
// lifetime limits, a ping after idleness, rollback / reset (one pipeline) on return. The
// wait for a free connection is an Asio operation with per-operation cancellation
// (asio::cancel_after, a cancellation_signal, `||` of awaitable operators): cancelled, it
// leaves the queue and completes with asio::error::operation_aborted; past the acquire
// timeout it completes with errc::timeout. The pool and its executor's io_context must
// outlive the pooled connections (returning one runs an asynchronous reset on it).
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <memory>
#include <system_error>

#include "ambisql/async_connection.hpp"
#include "ambisql/detail/host_plan.hpp"
#include "ambisql/pipeline.hpp"
#include "ambisql/pool.hpp"

namespace ambisql {

namespace detail {
struct async_pooled {
    std::unique_ptr<async_connection> c;
    pipeline p;  // the reset on return, alive while it runs
};
using async_slot = pool_slot<async_pooled>;

struct async_pool_shared : std::enable_shared_from_this<async_pool_shared> {
    async_connection::executor_type ex;
    pool_config cfg;
    pool_core<async_pooled> core;

    async_pool_shared(async_connection::executor_type e, pool_config c)
        : ex(std::move(e)), cfg(std::move(c)), core(cfg.limits) {}

    // A returned connection: rolled back / reset asynchronously, then idle (or closed).
    void give(std::unique_ptr<async_slot> s) {
        async_connection& c = *s->conn.c;
        const return_state st{c.is_open(), clock::now() >= s->expires, c.in_transaction(), s->tracked,
                              c.session_changed(), c.result_pending()};
        switch (prepare_return(cfg, st, s->conn.p)) {
            case return_action::close: {
                const bool broken = !c.is_open();
                c.close();
                core.discard(broken);
                return;
            }
            case return_action::keep: core.give_back(std::move(s)); return;
            case return_action::run: break;
        }
        if (cfg.reset_on_return) core.reset_done();
        pipeline& p = s->conn.p;
        async_slot* raw = s.release();
        c.async_run(p, [self = shared_from_this(), raw](boost::system::error_code ec) {
            std::unique_ptr<async_slot> back(raw);
            if (!ec && back->conn.p.all_ok() && back->conn.c->is_open()) {
                back->conn.p.clear();
                self->core.give_back(std::move(back));
            } else {
                const bool broken = !back->conn.c->is_open();
                back->conn.c->close();
                self->core.discard(broken);
            }
        });
    }
};

// A queued async acquirer: granted under the pool's lock (on any thread), it wakes its
// operation by cancelling the operation's timer on a strand, where the wait is also
// started (a grant may come before the wait has begun).
struct async_waiter final : pool_waiter<async_pooled> {
    explicit async_waiter(async_connection::executor_type ex) : strand(asio::make_strand(ex)), timer(strand) {}
    asio::strand<async_connection::executor_type> strand;
    asio::steady_timer timer;
    std::unique_ptr<async_slot> slot;
    std::atomic<bool> granted{false};
    std::shared_ptr<async_waiter> self;  // alive until the grant's wake-up has run
    void grant(std::unique_ptr<async_slot> s) override {
        slot = std::move(s);
        granted.store(true, std::memory_order_release);
        asio::post(strand, [w = std::move(self)] { w->timer.cancel(); });
    }
};
}  // namespace detail

class pooled_async_connection {
public:
    pooled_async_connection() = default;
    pooled_async_connection(pooled_async_connection&&) noexcept = default;
    pooled_async_connection& operator=(pooled_async_connection&& o) noexcept {
        if (this != &o) {
            release();
            pool_ = std::move(o.pool_);
            slot_ = std::move(o.slot_);
        }
        return *this;
    }
    ~pooled_async_connection() { release(); }

    async_connection& operator*() const noexcept { return *slot_->conn.c; }
    async_connection* operator->() const noexcept { return slot_->conn.c.get(); }
    explicit operator bool() const noexcept { return slot_ != nullptr; }

    void release() {
        if (!slot_) return;
        auto p = std::move(pool_);
        p->give(std::move(slot_));
    }
    void discard() noexcept {
        if (!slot_) return;
        auto p = std::move(pool_);
        const bool broken = !slot_->conn.c->is_open();
        slot_->conn.c->close();
        slot_.reset();
        p->core.discard(broken);
    }

private:
    friend class async_pool;
    pooled_async_connection(std::shared_ptr<detail::async_pool_shared> p, std::unique_ptr<detail::async_slot> s)
        : pool_(std::move(p)), slot_(std::move(s)) {}
    std::shared_ptr<detail::async_pool_shared> pool_;
    std::unique_ptr<detail::async_slot> slot_;
};

class async_pool {
public:
    using executor_type = async_connection::executor_type;

    async_pool(executor_type ex, pool_config cfg)
        : s_(std::make_shared<detail::async_pool_shared>(std::move(ex), std::move(cfg))) {}
    ~async_pool() { close(); }
    async_pool(const async_pool&) = delete;
    async_pool& operator=(const async_pool&) = delete;

    // Completes with (boost::system::error_code, pooled_async_connection).
    template <class Token>
    auto async_acquire(Token&& token) {
        return asio::async_compose<Token, void(boost::system::error_code, pooled_async_connection)>(
            acquire_op{s_}, token, s_->ex);
    }
    void close() noexcept {
        for (auto& s : s_->core.close()) s->conn.c->close();
    }
    pool_stats stats() const { return s_->core.stats(); }
    const pool_config& settings() const noexcept { return s_->cfg; }

private:
    struct acquire_op {
        std::shared_ptr<detail::async_pool_shared> pool;
        std::shared_ptr<detail::async_waiter> w;
        std::unique_ptr<detail::async_slot> slot;
        std::size_t init = 0;
        enum class st { start, waiting, pausing, connecting, tracking, init_statements, pinging } state = st::start;
        std::shared_ptr<asio::steady_timer> pause;  // connect_jitter's wait, when there is one
        clock::time_point deadline{};

        template <class Self>
        void operator()(Self& self, boost::system::error_code ec = {}) {
            switch (state) {
                case st::start:
                    deadline = clock::now() + pool->cfg.limits.acquire_timeout;
                    return take(self);
                case st::waiting: {
                    // Woken by the grant (its posted timer cancel), the deadline, or the
                    // caller's cancellation; the last two leave the queue unless a grant
                    // came first (then it is taken: withdraw() says so, under the lock).
                    const bool cancelled = self.cancelled() != asio::cancellation_type::none;
                    if (!w->granted.load(std::memory_order_acquire)) {
                        if (cancelled || clock::now() >= deadline) {
                            if (pool->core.withdraw(w.get())) {
                                w->self.reset();
                                w.reset();
                                return self.complete(cancelled ? boost::system::error_code(asio::error::operation_aborted)
                                                               : boost::system::error_code(make_error_code(errc::timeout)),
                                                     pooled_async_connection());
                            }
                        } else {
                            return wait(self);
                        }
                    }
                    slot = std::move(w->slot);
                    w.reset();  // its wake-up, if still to run, holds its own reference
                    if (!slot && pool->core.closed())
                        return self.complete(boost::system::error_code(make_error_code(errc::connection_closed)),
                                             pooled_async_connection());
                    return slot ? check(self) : create(self);
                }
                case st::pausing: return connect(self);
                case st::connecting:  // (several hosts, Galera checks: the connect itself does them)
                    if (!ec && pool->cfg.reset_on_return) {
                        state = st::tracking;
                        return slot->conn.c->async_query(detail::track_state_sql, std::move(self));
                    }
                    [[fallthrough]];
                case st::tracking:
                    if (state == st::tracking) {
                        slot->tracked = !ec;  // (older servers: reset every time)
                        if (!slot->conn.c->is_open()) ec = boost::system::error_code(make_error_code(errc::connection_broken));
                        else ec = {};
                    }
                    [[fallthrough]];
                case st::init_statements:
                    if (ec) {
                        slot.reset();
                        pool->core.connect_failed();
                        return self.complete(ec, pooled_async_connection());
                    }
                    return init_statements(self);
                case st::pinging:
                    if (!ec && pool->cfg.connection.galera_check && !detail::host_plan::galera_ok(slot->conn.c->result()))
                        ec = boost::system::error_code(make_error_code(errc::connect_failed));
                    if (ec) {  // died (or fell out of sync) while idle: replace it
                        slot->conn.c->close();
                        slot.reset();
                        pool->core.discard(true);
                        return take(self);
                    }
                    return done(self);
            }
        }

        template <class Self>
        void take(Self& self) {
            std::vector<std::unique_ptr<detail::async_slot>> expired;
            w = std::make_shared<detail::async_waiter>(pool->ex);
            w->self = w;
            auto got = pool->core.take(slot, w.get(), expired);
            for (auto& e : expired) e->conn.c->close();
            using outcome = detail::pool_core<detail::async_pooled>::outcome;
            if (got != outcome::wait) {
                w->self.reset();
                w.reset();
            }
            switch (got) {
                case outcome::closed:
                    return self.complete(boost::system::error_code(make_error_code(errc::connection_closed)),
                                         pooled_async_connection());
                case outcome::slot: return check(self);
                case outcome::create: return create(self);
                case outcome::wait: return wait(self);
            }
        }
        template <class Self>
        void wait(Self& self) {
            state = st::waiting;
            auto waiter = w;
            const auto until = deadline;
            asio::dispatch(waiter->strand, [waiter, until, self = std::move(self)]() mutable {
                if (waiter->granted.load(std::memory_order_acquire)) return self(boost::system::error_code());
                waiter->timer.expires_at(until);
                waiter->timer.async_wait(std::move(self));
            });
        }
        template <class Self>
        void create(Self& self) {
            if (const auto d = pool->core.connect_delay(); d > clock::duration::zero()) {
                state = st::pausing;
                pause = std::make_shared<asio::steady_timer>(pool->ex, d);
                return pause->async_wait(std::move(self));
            }
            connect(self);
        }
        template <class Self>
        void connect(Self& self) {
            pause.reset();
            slot = std::make_unique<detail::async_slot>();
            slot->conn.c = std::make_unique<async_connection>(pool->ex, pool->cfg.connection);
            slot->expires = pool->core.expiry();
            state = st::connecting;
            init = 0;
            slot->conn.c->async_connect(std::move(self));
        }
        template <class Self>
        void init_statements(Self& self) {
            if (init < pool->cfg.init_statements.size()) {
                state = st::init_statements;
                return slot->conn.c->async_query(pool->cfg.init_statements[init++], std::move(self));
            }
            pool->core.created();
            done(self);
        }
        template <class Self>
        void check(Self& self) {
            if (!pool->core.idle_too_long(*slot)) return done(self);
            state = st::pinging;
            if (pool->cfg.connection.galera_check)  // alive, and still a synced Galera node
                return slot->conn.c->async_query(detail::host_plan::galera_status_sql, std::move(self));
            slot->conn.c->async_ping(std::move(self));
        }
        template <class Self>
        void done(Self& self) {
            slot->conn.c->clear_session_changed();
            self.complete(boost::system::error_code(), pooled_async_connection(pool, std::move(slot)));
        }
    };

    std::shared_ptr<detail::async_pool_shared> s_;
};

}  // namespace ambisql
