#pragma once
// Which failures may be retried, and a transaction helper that retries them.
//
//   auto n = ambisql::transact(pool, [&](ambisql::connection& c) {
//       c.query("UPDATE stock SET n = n - 1 WHERE id = ?", id);
//       return c.query("SELECT n FROM stock WHERE id = ?", id).row(0)[0].as<int>();
//   });
//
// classify() is the one rule the pool, transact() and the Python layer use:
// - retriable: the server refused the work and kept nothing of it: 1213 (deadlock, and a
//   Galera certification conflict, which MariaDB reports as a deadlock), 1205 (lock wait
//   timeout), 1047 (WSREP has not yet prepared the node), 1180 (error during COMMIT, from a
//   Galera node: a failed certification; elsewhere its outcome is unknown); or the
//   connection was lost when nothing of the work could have been kept (not connected yet,
//   nothing sent, or inside a transaction that COMMIT had not been sent for, which the
//   server rolls back when the connection dies);
// - outcome_unknown: the connection was lost while COMMIT (or a statement outside a
//   transaction) was in flight: it may or may not have been applied;
// - fatal: anything else (syntax, constraints, permissions, TLS, authentication, misuse).
// What was sent comes from the connection's own record of the failing command
// (diagnostics::sent); a failure no connection recorded counts as sent outside a
// transaction, the cautious reading.
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <type_traits>
#include <utility>

#include "ambisql/error.hpp"
#include "ambisql/fiber_sync.hpp"
#include "ambisql/pool.hpp"

namespace ambisql {

enum class failure_class : std::uint8_t { fatal, retriable, outcome_unknown };
const char* to_string(failure_class c) noexcept;

// What was under way when the failure came.
struct failure_context {
    bool statements_sent = true;  // anything of the work had been sent
    bool in_transaction = false;  // inside BEGIN ... (not autocommit)
    bool commit_sent = false;     // the failure came while COMMIT was in flight
};

// What the connection recorded as sent (the cautious default where it recorded nothing).
failure_context context_of(const diagnostics& d) noexcept;
// By the connection's record.
failure_class classify(const diagnostics& d) noexcept;
inline failure_class classify(const error& e) noexcept { return classify(e.diag()); }
// By a context the caller knows better (transact(): its BEGIN and COMMIT).
failure_class classify(const diagnostics& d, const failure_context& ctx) noexcept;
inline failure_class classify(const error& e, const failure_context& ctx) noexcept { return classify(e.diag(), ctx); }

// Thrown by transact() when the connection was lost while COMMIT was in flight (and the
// work is not declared idempotent): whether it was applied is unknown.
class commit_outcome_unknown : public error {
public:
    using error::error;
};

struct retry_policy {
    int max_attempts = 5;  // in all, the first included
    std::chrono::milliseconds initial_backoff{20};
    std::chrono::milliseconds max_backoff{1000};
    // Re-run the work even when a COMMIT's outcome is unknown (the work can be applied
    // twice without harm).
    bool idempotent = false;
    // Told of every failed attempt and how it was classified (logging, metrics).
    std::function<void(const error&, failure_class, int attempt)> on_failure;
};

namespace detail {
// The wait between attempts: a random time up to min(max, initial * 2^attempt) ("full
// jitter"). It suspends a fiber, blocks a thread.
void backoff_sleep(const retry_policy& p, int attempt);
}  // namespace detail

// Runs fn(connection&) inside BEGIN ... COMMIT on a pooled connection, and re-runs the
// whole function on a retriable failure (never a statement on its own), up to
// max_attempts, with back-off. Fatal failures, and retriable ones past the last attempt,
// are rethrown; a COMMIT whose outcome is unknown throws commit_outcome_unknown unless
// the policy says the work is idempotent. Returns what fn returns.
template <class F>
auto transact(pool& p, F&& fn, const retry_policy& policy = {}) -> std::invoke_result_t<F&, connection&> {
    using R = std::invoke_result_t<F&, connection&>;
    for (int attempt = 0;; ++attempt) {
        failure_context ctx{false, false, false};
        pooled_connection c;
        try {
            c = p.acquire();
            c->query("BEGIN");
            ctx.statements_sent = ctx.in_transaction = true;
            if constexpr (std::is_void_v<R>) {
                fn(*c);
                ctx.commit_sent = true;
                c->query("COMMIT");
                return;
            } else {
                R r = fn(*c);
                ctx.commit_sent = true;
                c->query("COMMIT");
                return r;
            }
        } catch (const error& e) {
            const failure_class k = classify(e, ctx);
            if (policy.on_failure) policy.on_failure(e, k, attempt);
            if (c && c->is_open()) {
                std::error_code ignored;
                results rr;
                c->query("ROLLBACK", rr, ignored);
            }
            if (k == failure_class::outcome_unknown && !policy.idempotent) throw commit_outcome_unknown(e.diag());
            if (k == failure_class::fatal || attempt + 1 >= policy.max_attempts) throw;
        }
        c = pooled_connection();
        detail::backoff_sleep(policy, attempt);
    }
}

}  // namespace ambisql
