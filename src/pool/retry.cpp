// classify(): which failures may be retried (see ambisql/retry.hpp), and the back-off.
#include "ambisql/retry.hpp"

#include <algorithm>
#include <mutex>

namespace ambisql {

const char* to_string(failure_class c) noexcept {
    switch (c) {
        case failure_class::fatal: return "fatal";
        case failure_class::retriable: return "retriable";
        case failure_class::outcome_unknown: return "outcome unknown";
    }
    return "?";
}

namespace {

bool refused_and_kept_nothing(std::uint16_t code) {
    switch (code) {
        case 1213:  // ER_LOCK_DEADLOCK: a deadlock, or a Galera certification conflict
        case 1205:  // ER_LOCK_WAIT_TIMEOUT (innodb_rollback_on_timeout aside, the statement is undone)
        case 1047:  // ER_UNKNOWN_COM_ERROR: "WSREP has not yet prepared node for application use"
            return true;
        default: return false;
    }
}

bool connection_lost(const diagnostics& d) {
    if (d.kind == error_kind::network) return true;
    if (d.kind == error_kind::server) {
        // the server ending the connection: killed, shutting down, idle too long
        return d.server_code == 1927 || d.server_code == 1053 || d.server_code == 4031;
    }
    const std::error_code ec = d.code;
    return ec == make_error_code(errc::connection_broken) || ec == make_error_code(errc::not_connected) ||
           ec == make_error_code(errc::connection_closed) || ec == make_error_code(errc::connect_failed) ||
           ec == make_error_code(errc::host_not_found) || ec == make_error_code(errc::timeout);
}

}  // namespace

failure_context context_of(const diagnostics& d) noexcept {
    if (!d.sent.known) return failure_context{};
    return failure_context{d.sent.statements, d.sent.in_transaction, d.sent.commit};
}

failure_class classify(const diagnostics& d) noexcept { return classify(d, context_of(d)); }

failure_class classify(const diagnostics& d, const failure_context& ctx) noexcept {
    if (d.kind == error_kind::server && refused_and_kept_nothing(d.server_code)) return failure_class::retriable;
    // ER_ERROR_DURING_COMMIT: a Galera node's failed certification keeps nothing; anywhere
    // else the engine or the binary log failed mid-commit, which may or may not stand.
    if (d.kind == error_kind::server && d.server_code == 1180)
        return d.sent.galera ? failure_class::retriable : failure_class::outcome_unknown;
    if (!connection_lost(d)) return failure_class::fatal;
    if (!ctx.statements_sent) return failure_class::retriable;
    if (ctx.commit_sent) return failure_class::outcome_unknown;
    // Inside a transaction whose COMMIT was not sent: the server rolls it back when the
    // connection dies. A statement outside one may have been applied.
    return ctx.in_transaction ? failure_class::retriable : failure_class::outcome_unknown;
}

namespace detail {

void backoff_sleep(const retry_policy& p, int attempt) {
    static std::mutex m;
    static std::mt19937_64 rng(std::random_device{}());
    const auto cap = std::min<long long>(p.max_backoff.count(),
                                         p.initial_backoff.count() << std::min(attempt, 20));
    std::chrono::milliseconds wait;
    {
        std::lock_guard lk(m);
        wait = std::chrono::milliseconds(std::uniform_int_distribution<long long>(0, std::max(cap, 0LL))(rng));
    }
    fiber_event never;  // a fiber sleeps on its loop, a thread in the kernel
    (void)never.wait_for(wait);
}

}  // namespace detail
}  // namespace ambisql
