#pragma once
// Cancelling a running command: the one implementation every driver uses (blocking and
// fibers through the wait hook, poll/fileno, Asio through poll/fileno).
//
// The command is killed with KILL QUERY over a side connection, which the canceller
// drives without blocking: the driver waits on fileno() for events() until deadline()
// and calls poll() again, in whatever way it waits. While the cancelled command's
// response is drained, the KILL is sent again at retry_at() if the command has not ended
// (a KILL that reached the server before the statement began is lost; see kill_schedule). Once the
// command has ended, cancel_verdict() says what the caller is told.
//
// The rule for an interrupted operation, the same in every driver and every model (a
// cancel() call, a signal in a blocking wait, a killed fiber, greenlet or task, a wait
// callback that raised): the first interruption kills the command (start()) and drains
// its response, so the connection stays in step; a second interruption while that runs,
// or a cancellation not over by give_up_at() (config::cancel_timeout after the first),
// closes the connection instead (gave_up()): a server, or a path to it, that does not
// answer never holds the caller longer than that.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "ambisql/config.hpp"
#include "ambisql/error.hpp"
#include "ambisql/nb_connection.hpp"
#include "proto/session.hpp"

namespace ambisql::detail {

// What the caller of a cancelled operation is told once it has ended: `outcome`, how the
// command ended, unless the server interrupted it (then errc::cancelled, connection
// usable); `rows_lost`: a streamed result was discarded to bring the connection back in
// step (cancelled too). A command that completed, or failed by itself, before the KILL
// landed keeps its real outcome: the caller sees that it was not cancelled.
diagnostics cancel_verdict(const diagnostics& outcome, bool rows_lost);
// The verdict when the KILL could not be delivered: the connection was closed.
diagnostics cancel_failed(const diagnostics& why);
// The verdict when the rule above closes the connection: interrupted again
// (`again`), or the cancellation outlasted config::cancel_timeout.
diagnostics gave_up(bool again, std::chrono::milliseconds cancel_timeout);

// When to send the KILL again while the command has not ended: `retry_every` after the
// last one was answered, at a steady pace. A KILL is lost when it lands before the
// statement begins (a server too busy to read it yet): the cancellation then ends at most
// one interval after the statement's start, however late that was. (Doubling intervals
// made a server's delay up to twice as long: 1.5 s for a statement 800 ms late.) A KILL
// QUERY is one flag set on the server, and none is sent while the last is unanswered.
class kill_schedule {
public:
    static constexpr std::chrono::milliseconds retry_every{200};
    void delivered(clock::time_point now) noexcept { at_ = now + retry_every; }  // a KILL was answered at `now`
    clock::time_point retry_at() const noexcept { return at_; }
    void reset() noexcept { at_ = clock::time_point::max(); }

private:
    clock::time_point at_ = clock::time_point::max();
};

class canceller {
public:
    enum class state : std::uint8_t { idle, sending, delivered, failed };

    // Starts killing the running command of the connection with id `target`: connects
    // the side connection (the main one's settings) and sends KILL QUERY.
    void start(const config& cfg, std::uint32_t target);
    // When the cancellation gives up and closes the connection (max(): never).
    clock::time_point give_up_at() const noexcept { return give_up_; }
    bool overdue(clock::time_point now) const noexcept { return now >= give_up_; }
    // `d` clamped to give_up_at() while a cancellation runs: how long a driver may wait.
    clock::time_point bound(clock::time_point d) const noexcept { return active() ? std::min(d, give_up_) : d; }
    // Sends the KILL again over the side connection (after retry_at()).
    void again();
    // Moves the side connection on without blocking. sending: wait on fileno() for
    // events() until deadline(), then call again.
    state poll();
    state current() const noexcept { return st_; }
    bool active() const noexcept { return st_ != state::idle; }
    int fileno() const noexcept { return side_ ? side_->fileno() : -1; }
    unsigned events() const noexcept { return last_.events(); }
    clock::time_point deadline() const noexcept { return last_.deadline(); }
    clock::time_point retry_at() const noexcept { return schedule_.retry_at(); }
    const diagnostics& error() const noexcept { return error_; }
    // Ends the cancellation (closes the side connection).
    void finish() noexcept;
    // From another thread (a close()): ends the side connection's current wait at once
    // (its socket shut down: poll() then fails). A side connection started after this is
    // not affected: the caller checks its own close request before waiting.
    void interrupt() noexcept;

    // Once the cancelled operation has ended, in every driver: true when a streamed result
    // was left unfinished and its discard has now been started (run it to its end, then
    // call this again); false when it is over and conclude() says how.
    bool discard_rest(proto::session& s);
    // What the caller is told: cancel_verdict() of how the session's operation ended (a
    // failure on a connection that is gone is not usable). Ends the cancellation.
    diagnostics conclude(const proto::session& s);

private:
    std::mutex side_mu_;  // side_'s replacement and release, against interrupt() from another thread
    std::unique_ptr<nb_connection> side_;
    std::string kill_sql_;
    bool connecting_ = false;
    state st_ = state::idle;
    poll_result last_{poll_result::status::done, clock::time_point::max()};
    kill_schedule schedule_;
    clock::time_point give_up_ = clock::time_point::max();
    clock::time_point started_{};  // (for the trace)
    std::uint32_t target_ = 0;
    // With AMBISQL_CANCEL_TRACE set, each step of a cancellation goes to stderr with its
    // time since start(): the side connection's connect, each KILL sent and answered,
    // the end (what a slow cancellation spent its time on).
    void trace(const char* step, const std::string& detail = {}) const;
    diagnostics error_;
    bool rows_lost_ = false;  // a cancelled stream was discarded
};

}  // namespace ambisql::detail
