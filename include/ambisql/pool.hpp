#pragma once
// A connection pool for threads and fibers.
//
//   ambisql::pool_config pc;
//   pc.connection = ambisql::config::from_url("mysql://app:pw@db/shop");
//   pc.limits.max_size = 32;
//   ambisql::pool pool(pc);
//   {
//       auto conn = pool.acquire();          // a pooled_connection
//       conn->query("UPDATE ...");
//   }                                        // given back: reset, then idle again
//
// acquire() is thread-safe. On a plain thread it blocks the thread; on a hub's fiber it
// suspends only the fiber (the loop keeps serving everything else), so one pool serves
// threads and fibers alike. Waiters are served in the order they came. A connection is
// given back when its pooled_connection is destroyed: one that is broken is closed; one
// inside a transaction is rolled back (or closed, with rollback_on_return off); one whose
// session may have changed is reset: COM_RESET_CONNECTION and the session's init
// statements go out as one pipeline (one round trip) so the next user finds a fresh
// session (see reset_on_return); one with a result still unread is closed. A connection idle
// longer than limits.ping_after_idle is pinged before it is handed out, and replaced if
// the ping fails. The pool must outlive its pooled_connections.
// (Asio: ambisql::async_pool in <ambisql/async_pool.hpp>.)
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ambisql/config.hpp"
#include "ambisql/connection.hpp"
#include "ambisql/detail/pool_core.hpp"

namespace ambisql {

struct pool_config {
    config connection;
    pool_limits limits;
    // A returned connection whose session may have changed is reset (COM_RESET_CONNECTION
    // and the init statements, one round trip). The pool turns session_track_state_change
    // on, so the server says when the session changed (variables, temporary tables,
    // schema, SQL PREPARE, ...); what the server does not report (table and named locks,
    // HANDLERs, LAST_INSERT_ID, user variables set inside a statement, XA, stored routines)
    // the connection sees in the statements' text and the inserts' answers
    // (connection::session_changed()). A connection with none of that goes back as it is,
    // at no round trip (servers without the tracker: reset every time). One whose result
    // was not read to its end (a row_stream left open) is closed. false: never reset.
    bool reset_on_return = true;
    // Reset every returned connection, whatever it did: for a schema whose triggers or
    // views take named locks or set user variables, which no statement's text shows.
    bool reset_always = false;
    // A connection given back inside a transaction: rolled back (true) or closed (false).
    bool rollback_on_return = true;
    // Statements run on every new connection and after every reset (SET ..., wsrep_sync_wait).
    std::vector<std::string> init_statements;

    // A connection URL (config::from_url) whose pool-* parameters set the pool:
    //   pool-max-size, pool-min-size, pool-acquire-timeout, pool-idle-timeout,
    //   pool-max-lifetime, pool-ping-after-idle, pool-connect-jitter (seconds, decimals
    //   allowed), pool-max-connecting,
    //   pool-reset-on-return (0/1), pool-reset-always (0/1), pool-rollback-on-return (0/1).
    // Throws ambisql::error (errc::bad_url) on anything it does not understand.
    static pool_config from_url(std::string_view url);
};

class pool;
class pipeline;

namespace detail {
// What a connection given back to a pool needs, for every model: closed, kept as it is, or
// kept once `p` has run (a rollback, or the reset with what restores the session: one
// round trip).
enum class return_action { close, keep, run };
struct return_state {
    bool open = false, expired = false, in_transaction = false;
    bool tracked = false, session_changed = false;  // see pool_slot::tracked
    bool unfinished = false;  // a result not read to its end (a row_stream left open)
};
return_action prepare_return(const pool_config& cfg, const return_state& st, pipeline& p);
}  // namespace detail

class pooled_connection {
public:
    pooled_connection() = default;
    pooled_connection(pooled_connection&& o) noexcept = default;
    pooled_connection& operator=(pooled_connection&& o) noexcept;
    ~pooled_connection();

    connection& operator*() const noexcept { return slot_->conn; }
    connection* operator->() const noexcept { return &slot_->conn; }
    connection& get() const noexcept { return slot_->conn; }
    explicit operator bool() const noexcept { return slot_ != nullptr; }

    // Gives the connection back now (what the destructor does).
    void release() noexcept;
    // Closes the connection instead of giving it back (its place is freed).
    void discard() noexcept;

private:
    friend class pool;
    struct shared;
    pooled_connection(std::shared_ptr<shared> p, std::unique_ptr<detail::pool_slot<connection>> s)
        : pool_(std::move(p)), slot_(std::move(s)) {}
    std::shared_ptr<shared> pool_;
    std::unique_ptr<detail::pool_slot<connection>> slot_;
};

class pool {
public:
    explicit pool(pool_config cfg);
    ~pool();  // closes idle connections; handed-out ones close when given back
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    // Throws ambisql::error: errc::timeout when no connection came within the acquire
    // timeout, errc::connection_closed once the pool is closed, or the connect's error.
    pooled_connection acquire();
    pooled_connection acquire(std::chrono::milliseconds timeout);
    // Opens connections until `n` (limits.min_size) exist: a warm start.
    void prefill(std::size_t n);
    void prefill();
    void close() noexcept;
    pool_stats stats() const;
    const pool_config& settings() const noexcept;

private:
    std::shared_ptr<pooled_connection::shared> s_;
};

}  // namespace ambisql
