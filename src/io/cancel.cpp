#include "io/cancel.hpp"

#include <cstdio>
#include <cstdlib>

#include <algorithm>
#include <string>

namespace ambisql::detail {

namespace {
constexpr std::uint16_t er_query_interrupted = 1317;
// The side connection must not hang the cancellation: its own bounds.
constexpr std::chrono::milliseconds side_timeout{5000};
}  // namespace

diagnostics cancel_verdict(const diagnostics& outcome, bool rows_lost) {
    const bool interrupted = outcome.server_code == er_query_interrupted;
    if (!interrupted && !rows_lost) return outcome;
    diagnostics d;
    d.kind = error_kind::client;
    d.code = errc::cancelled;
    d.message = interrupted ? "operation cancelled: the command was killed on the server"
                            : "operation cancelled: the rest of the streamed result was discarded";
    d.connection_usable = outcome.connection_usable;
    return d;
}

diagnostics cancel_failed(const diagnostics& why) {
    diagnostics d;
    d.kind = error_kind::client;
    d.code = errc::cancelled;
    d.message = "operation cancelled; the command could not be killed on the server (" + why.message +
                "), so the connection was closed";
    d.connection_usable = false;
    return d;
}

diagnostics gave_up(bool again, std::chrono::milliseconds cancel_timeout) {
    diagnostics why;
    why.message = again ? "interrupted again while it was being killed"
                        : "the server did not end it within the cancel timeout of " +
                              std::to_string(cancel_timeout.count()) + " ms";
    return cancel_failed(why);
}

void canceller::trace(const char* step, const std::string& detail) const {
    static const bool on = std::getenv("AMBISQL_CANCEL_TRACE") != nullptr;
    if (!on) return;
    const double ms = std::chrono::duration<double, std::milli>(clock::now() - started_).count();
    std::fprintf(stderr, "[ambisql cancel] target %u +%.1f ms: %s%s%s\n", target_, ms, step,
                 detail.empty() ? "" : ": ", detail.c_str());
}

void canceller::start(const config& cfg, std::uint32_t target) {
    config side = cfg;
    side.connect_timeout = cfg.connect_timeout.count() > 0 ? std::min(cfg.connect_timeout, side_timeout) : side_timeout;
    side.read_timeout = side.write_timeout = side_timeout;
    side.local_infile_allow.clear();
    side.local_infile_handler = nullptr;
    side.compress = false;
    side.statement_cache_size = 0;
    auto fresh = std::make_unique<nb_connection>(side);
    {
        std::lock_guard lock(side_mu_);
        side_.swap(fresh);
    }
    fresh.reset();  // (the previous one, closed outside the lock)
    give_up_ = cfg.cancel_timeout.count() > 0 ? clock::now() + cfg.cancel_timeout : clock::time_point::max();
    kill_sql_ = "KILL QUERY " + std::to_string(target);
    schedule_.reset();
    error_.clear();
    rows_lost_ = false;
    st_ = state::sending;
    connecting_ = true;
    started_ = clock::now();
    target_ = target;
    trace("side connection: connecting");
    side_->start_connect();
}

void canceller::again() {
    if (st_ != state::delivered || !side_ || !side_->is_open()) return;
    st_ = state::sending;
    connecting_ = false;
    trace("KILL sent again (the command had not ended)");
    side_->start_query(kill_sql_);
}

canceller::state canceller::poll() {
    while (st_ == state::sending) {
        last_ = side_->poll();
        if (!last_.done()) return st_;
        if (!side_->ok()) {
            error_ = side_->error();
            trace("side connection failed", error_.message);
            side_->close();
            st_ = state::failed;
            break;
        }
        if (connecting_) {
            connecting_ = false;
            trace("side connection: connected; KILL sent");
            side_->start_query(kill_sql_);
            continue;
        }
        trace("KILL answered");
        schedule_.delivered(clock::now());
        st_ = state::delivered;
    }
    return st_;
}

void canceller::finish() noexcept {
    std::unique_ptr<nb_connection> gone;
    {
        std::lock_guard lock(side_mu_);
        gone.swap(side_);
    }
    if (gone) gone->close();
    gone.reset();
    st_ = state::idle;
    schedule_.reset();
    give_up_ = clock::time_point::max();
}

void canceller::interrupt() noexcept {
    std::lock_guard lock(side_mu_);
    if (side_) side_->interrupt_io();
}

bool canceller::discard_rest(proto::session& s) {
    if (rows_lost_ || !s.connected() || !s.result_pending() || !s.start_discard()) return false;
    rows_lost_ = true;
    return true;
}

diagnostics canceller::conclude(const proto::session& s) {
    trace("the command ended", s.failed() ? s.diag().message : "completed");
    finish();
    diagnostics d = cancel_verdict(s.failed() ? s.diag() : diagnostics{}, rows_lost_);
    rows_lost_ = false;
    if (!s.connected() && d.kind != error_kind::none) d.connection_usable = false;
    return d;
}

}  // namespace ambisql::detail
