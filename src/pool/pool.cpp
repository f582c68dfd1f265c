// The pool for threads and fibers: detail::pool_core's bookkeeping, with waits on a
// fiber_event (a plain thread blocks, a fiber suspends) and the connection work (connect,
// ping, rollback / reset on return) done by the acquiring or returning caller, never
// under the pool's lock.
#include "ambisql/pool.hpp"

#include "ambisql/detail/host_plan.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "ambisql/error.hpp"
#include "ambisql/fiber_sync.hpp"
#include "ambisql/pipeline.hpp"
#include "ambisql/resultset.hpp"

namespace ambisql {

using slot_t = detail::pool_slot<connection>;
using slot_ptr = std::unique_ptr<slot_t>;

struct pooled_connection::shared {
    pool_config cfg;
    detail::pool_core<connection> core;

    explicit shared(pool_config c) : cfg(std::move(c)), core(cfg.limits) {}

    slot_ptr open() {
        auto s = std::make_unique<slot_t>();
        s->conn.connect(cfg.connection);
        if (cfg.reset_on_return) {
            std::error_code ec;
            results r;
            s->conn.query(detail::track_state_sql, r, ec);  // (older servers: reset every time)
            s->tracked = !ec;
            if (ec && !s->conn.is_open()) throw error(s->conn.last_error());
        }
        for (const std::string& q : cfg.init_statements) s->conn.query(q);
        s->expires = core.expiry();
        return s;
    }
    // Makes a returned connection fit for the next user; false: close it instead.
    bool refresh(slot_t& s) noexcept {
        connection& c = s.conn;
        try {
            pipeline p;
            switch (detail::prepare_return(cfg, state_of(s), p)) {
                case detail::return_action::close: return false;
                case detail::return_action::keep: return true;
                case detail::return_action::run: break;
            }
            c.run(p);
            if (cfg.reset_on_return) core.reset_done();
            return p.all_ok() && c.is_open();
        } catch (...) {
            return false;
        }
    }
    detail::return_state state_of(const slot_t& s) const noexcept {
        const connection& c = s.conn;
        return {c.is_open(), clock::now() >= s.expires, c.in_transaction(), s.tracked,
                c.session_changed(), c.result_pending()};
    }
    void give(slot_ptr s) noexcept {
        if (refresh(*s)) {
            core.give_back(std::move(s));
            return;
        }
        const bool broken = !s->conn.is_open();
        s->conn.close();
        core.discard(broken);
    }
    // With the Galera check on, the status query that also serves as the idle ping.
    const char* galera_query() const noexcept {
        return cfg.connection.galera_check ? detail::host_plan::galera_status_sql : nullptr;
    }
    static void close_all(std::vector<slot_ptr>& v) noexcept {
        for (auto& s : v) s->conn.close();
        v.clear();
    }
};

namespace {

struct blocking_waiter final : detail::pool_waiter<connection> {
    fiber_event ev;
    slot_ptr slot;
    void grant(slot_ptr s) override {
        slot = std::move(s);
        ev.set();
    }
};

[[noreturn]] void fail(errc e, const std::string& what) {
    diagnostics d;
    d.kind = error_kind::client;
    d.code = make_error_code(e);
    d.message = what;
    throw error(d);
}

}  // namespace

pooled_connection& pooled_connection::operator=(pooled_connection&& o) noexcept {
    if (this != &o) {
        release();
        pool_ = std::move(o.pool_);
        slot_ = std::move(o.slot_);
    }
    return *this;
}

pooled_connection::~pooled_connection() { release(); }

void pooled_connection::release() noexcept {
    if (!slot_) return;
    auto p = std::move(pool_);
    p->give(std::move(slot_));
}

void pooled_connection::discard() noexcept {
    if (!slot_) return;
    auto p = std::move(pool_);
    const bool broken = !slot_->conn.is_open();
    slot_->conn.close();
    slot_.reset();
    p->core.discard(broken);
}

detail::return_action detail::prepare_return(const pool_config& cfg, const return_state& st, pipeline& p) {
    if (!st.open || st.expired || st.unfinished || (st.in_transaction && !cfg.rollback_on_return))
        return return_action::close;
    if (!st.in_transaction && (!cfg.reset_on_return || (st.tracked && !st.session_changed && !cfg.reset_always)))
        return return_action::keep;  // nothing to undo
    p.clear();
    if (!cfg.reset_on_return) {
        p.query("ROLLBACK");
        return return_action::run;
    }
    p.reset_connection();  // (which also rolls back)
    if (!cfg.connection.database.empty()) p.select_db(cfg.connection.database);  // a reset keeps USE's
    if (st.tracked) p.query(track_state_sql);
    for (const std::string& q : cfg.init_statements) p.query(q);
    return return_action::run;
}

pool_config pool_config::from_url(std::string_view url) {
    auto bad = [](const std::string& why) {
        diagnostics d;
        d.kind = error_kind::client;
        d.code = make_error_code(errc::bad_url);
        d.message = "connection URL: " + why;
        throw error(d);
    };
    pool_config pc;
    std::string rest(url.substr(0, url.find('?')));
    std::string kept;
    if (auto q = url.find('?'); q != std::string_view::npos) {
        std::string_view query = url.substr(q + 1);
        while (!query.empty()) {
            auto amp = query.find('&');
            std::string kv(query.substr(0, amp));
            query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
            auto eq = kv.find('=');
            std::string key = kv.substr(0, eq), v = eq == std::string::npos ? std::string() : kv.substr(eq + 1);
            for (char& ch : key)
                if (ch == '_') ch = '-';
            if (key.rfind("pool-", 0) != 0) {
                kept += (kept.empty() ? "" : "&") + kv;
                continue;
            }
            auto number = [&]() {
                double d = 0;
                auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
                if (ec != std::errc() || end != v.data() + v.size() || v.empty() || d < 0 || d > 1e9)
                    bad("bad " + key + " '" + v + "'");
                return d;
            };
            auto ms = [&]() { return std::chrono::milliseconds(static_cast<long long>(number() * 1000 + 0.5)); };
            auto flag = [&]() {
                if (v == "1" || v == "true") return true;
                if (v == "0" || v == "false") return false;
                bad("bad " + key + " '" + v + "'");
                return false;  // (not reached)
            };
            if (key == "pool-max-size") pc.limits.max_size = static_cast<std::size_t>(number());
            else if (key == "pool-min-size") pc.limits.min_size = static_cast<std::size_t>(number());
            else if (key == "pool-acquire-timeout") pc.limits.acquire_timeout = ms();
            else if (key == "pool-idle-timeout") pc.limits.idle_timeout = ms();
            else if (key == "pool-max-lifetime") pc.limits.max_lifetime = ms();
            else if (key == "pool-ping-after-idle") pc.limits.ping_after_idle = ms();
            else if (key == "pool-max-connecting") pc.limits.max_connecting = static_cast<std::size_t>(number());
            else if (key == "pool-connect-jitter") pc.limits.connect_jitter = ms();
            else if (key == "pool-reset-on-return") pc.reset_on_return = flag();
            else if (key == "pool-reset-always") pc.reset_always = flag();
            else if (key == "pool-rollback-on-return") pc.rollback_on_return = flag();
            else bad("unknown parameter '" + key + "'");
        }
    }
    if (pc.limits.max_size == 0 || pc.limits.min_size > pc.limits.max_size) bad("pool-min-size exceeds pool-max-size");
    pc.connection = config::from_url(kept.empty() ? rest : rest + "?" + kept);
    return pc;
}

pool::pool(pool_config cfg) : s_(std::make_shared<pooled_connection::shared>(std::move(cfg))) {}

void pool::prefill() { prefill(s_->cfg.limits.min_size); }

pool::~pool() { close(); }

const pool_config& pool::settings() const noexcept { return s_->cfg; }

pool_stats pool::stats() const { return s_->core.stats(); }

void pool::close() noexcept {
    auto v = s_->core.close();
    pooled_connection::shared::close_all(v);
}

pooled_connection pool::acquire() { return acquire(s_->cfg.limits.acquire_timeout); }

pooled_connection pool::acquire(std::chrono::milliseconds timeout) {
    auto& core = s_->core;
    const clock::time_point deadline = clock::now() + timeout;
    using outcome = detail::pool_core<connection>::outcome;
    for (;;) {
        std::vector<slot_ptr> expired;
        slot_ptr s;
        auto got = core.take(s, nullptr, expired);
        std::optional<blocking_waiter> w;  // made only when there is a wait to be had
        if (got == outcome::wait) got = core.take(s, &w.emplace(), expired);
        pooled_connection::shared::close_all(expired);
        if (got == outcome::closed) fail(errc::connection_closed, "the pool is closed");
        bool create = got == outcome::create;
        if (got == outcome::wait) {
            if (!w->ev.wait_until(deadline) && core.withdraw(&*w))
                fail(errc::timeout, "no pooled connection became free within the acquire timeout");
            // granted (perhaps just as the deadline passed): a connection, or its place
            if (!w->slot && core.closed()) fail(errc::connection_closed, "the pool is closed");
            s = std::move(w->slot);
            create = !s;
        }
        if (create) {
            if (const auto pause = core.connect_delay(); pause > clock::duration::zero())
                fiber_event().wait_for(pause);  // (a fiber sleeps, a thread blocks)
            try {
                s = s_->open();
            } catch (...) {
                core.connect_failed();
                throw;
            }
            core.created();
            s->conn.clear_session_changed();
            return pooled_connection(s_, std::move(s));
        }
        if (core.idle_too_long(*s)) {
            std::error_code ec;
            if (const char* q = s_->galera_query()) {  // alive, and still a synced Galera node
                results r;
                s->conn.query(q, r, ec);
                if (!ec && !detail::host_plan::galera_ok(r)) ec = make_error_code(errc::connect_failed);
            } else {
                s->conn.ping(ec);
            }
            if (ec) {  // died (or fell out of sync) while idle: replace it
                s->conn.close();
                core.discard(true);
                continue;
            }
        }
        s->conn.clear_session_changed();
        return pooled_connection(s_, std::move(s));
    }
}

void pool::prefill(std::size_t n) {
    std::vector<pooled_connection> held;  // held at once, so that n distinct ones exist
    n = std::min(n, s_->cfg.limits.max_size);
    while (held.size() < n) held.push_back(acquire());
}

}  // namespace ambisql
