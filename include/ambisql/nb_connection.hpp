#pragma once
// The loop-agnostic non-blocking API (libpq / psycopg2 style).
//
//   ambisql::nb_connection c(cfg);
//   c.start_connect();
//   for (;;) {
//       auto w = c.poll();                 // does all the I/O it can without blocking
//       if (w.done()) break;
//       my_loop_wait(c.fileno(), w.events(), w.deadline());
//   }
//   c.check();                             // throws ambisql::error if it failed
//
// Every operation of the blocking connection has a start_*() here. Results are read
// from the connection once poll() says done, without further I/O.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ambisql/config.hpp"
#include "ambisql/error.hpp"
#include "ambisql/format.hpp"
#include "ambisql/pipeline.hpp"
#include "ambisql/resultset.hpp"
#include "ambisql/statement.hpp"
#include "ambisql/row.hpp"
#include "ambisql/wait_hook.hpp"

namespace ambisql {

// What a non-blocking operation needs next.
class poll_result {
public:
    enum class status : std::uint8_t { done, want_read, want_write };
    poll_result(status s, clock::time_point d) noexcept : s_(s), deadline_(d) {}
    status state() const noexcept { return s_; }
    bool done() const noexcept { return s_ == status::done; }
    // wait_for::read or wait_for::write; 0 when done.
    unsigned events() const noexcept {
        return s_ == status::want_read ? wait_for::read : s_ == status::want_write ? wait_for::write : 0;
    }
    // Call poll() again at this time even if the socket is not ready (to time out);
    // clock::time_point::max() when there is no timeout.
    clock::time_point deadline() const noexcept { return deadline_; }

private:
    status s_;
    clock::time_point deadline_;
};

namespace detail {
class nb_impl;
class canceller;
}

class nb_connection {
public:
    nb_connection();
    explicit nb_connection(const config& cfg);
    ~nb_connection();
    nb_connection(nb_connection&&) noexcept;
    nb_connection& operator=(nb_connection&&) noexcept;

    void set_config(const config& cfg);  // for the next start_connect()

    // Starting an operation while one is running throws ambisql::error
    // (errc::operation_in_progress) and leaves the running one alone.
    void start_connect();
    void start_query(std::string_view sql);  // buffers every resultset into result()
    template <class... Args>
        requires(sizeof...(Args) > 0)
    void start_query(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)...};
        start_query_args(sql, a);
    }
    void start_query_args(std::string_view sql, std::span<const sql_arg> args);
    // Streaming: start_stream() reads the first resultset's header; then each
    // start_read_rows() delivers a batch (batch_size() == 0 at the end of the resultset),
    // and start_next_result() moves to the next resultset while more_results().
    void start_stream(std::string_view sql);
    template <class... Args>
        requires(sizeof...(Args) > 0)
    void start_stream(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)...};
        start_stream_args(sql, a);
    }
    void start_stream_args(std::string_view sql, std::span<const sql_arg> args);
    void start_read_rows();
    void start_next_result();
    void start_discard();
    void start_ping();
    void start_select_db(std::string_view database);
    void start_set_character_set(std::string_view charset, std::string_view collation = {});  // see connection's
    void start_reset_connection();

    // Prepared statements (see connection::execute): through the statement cache...
    template <class... Args>
    void start_execute(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        start_execute_args(sql, std::span<const sql_arg>(a, sizeof...(Args)));
    }
    void start_execute_args(std::string_view sql, std::span<const sql_arg> args);
    void start_stream_execute_args(std::string_view sql, std::span<const sql_arg> args);
    // ...or explicit: start_prepare() then prepared() once done.
    void start_prepare(std::string_view sql);
    const statement& prepared() const noexcept;
    void start_execute_args(const statement& st, std::span<const sql_arg> args);
    void start_close_statement(const statement& st);
    // Every stage of `p` (which must outlive the operation) in one write; see pipeline.hpp.
    void start_pipeline(pipeline& p);
    // See connection::execute_many; `values` must outlive the operation. The total of
    // affected rows is result().affected_rows().
    void start_execute_many(std::string_view sql, std::span<const sql_arg> values, std::size_t width);

    // Moves as many bytes as the socket takes without blocking. Right after sending a
    // request it reports want_read without trying to receive (the response cannot be
    // there yet), which is right for level-triggered waits; an edge-triggered driver
    // that saw the socket become readable while idle calls expect_input() before the
    // next operation, so that poll() tries the receive first.
    poll_result poll();
    void expect_input() noexcept;
    // Cancels the running operation; keep calling poll() until done. A command is killed
    // on the server (KILL QUERY over a second connection, sent again if the command
    // outlasts it) and its response read, so the connection stays usable; the operation
    // then fails with errc::cancelled if the server interrupted it (or a streamed result
    // was discarded), and otherwise keeps its real outcome (it had completed, or failed by
    // itself, before the KILL landed). A KILL that cannot be delivered closes the
    // connection; a cancelled connect closes it. Called again while the cancellation
    // runs, or a cancellation not over within config::cancel_timeout: the connection is
    // closed (the rule of io/cancel.hpp, every model's). Nothing to cancel: does nothing.
    void cancel() noexcept;
    bool cancelling() const noexcept;  // cancel() was called and the operation is not done yet
    // The socket to wait on. It changes during start_connect() (one per address tried)
    // and while cancel() kills a command (the second connection's): ask after each poll().
    int fileno() const noexcept;
    bool busy() const noexcept;
    // A large result is streaming in (see config::read_coalescing): a driver that has
    // just found the socket empty may nap briefly before it waits, so that what the
    // server writes meanwhile is read at once instead of waking for every chunk.
    bool bulk_rows() const noexcept;

    // ---- after poll() said done
    bool ok() const noexcept;
    const diagnostics& error() const noexcept;
    void check() const;  // throws ambisql::error when the operation failed
    const results& result() const noexcept;
    std::span<const column> stream_columns() const noexcept;
    std::size_t batch_size() const noexcept;
    row_view batch_row(std::size_t i) const noexcept;
    bool rows_pending() const noexcept;   // the current resultset has more rows to read
    bool more_results() const noexcept;   // another resultset follows
    const ok_info& stream_ok() const noexcept;

    void close() noexcept;
    bool is_open() const noexcept;
    std::uint32_t connection_id() const noexcept;
    const std::string& server_version() const noexcept;
    bool tls_active() const noexcept;
    bool compressed() const noexcept;  // protocol compression is on
    escaping escaping_rules() const noexcept;
    std::uint16_t server_status() const noexcept;  // the last OK/EOF's (autocommit, in transaction, ...)
    bool in_transaction() const noexcept;          // see connection::in_transaction()
    bool result_pending() const noexcept;          // see connection::result_pending()
    bool session_changed() const noexcept;  // see connection::session_changed()
    void clear_session_changed() noexcept;
    const std::string& character_set() const noexcept;  // see connection::character_set()
    const config& settings() const noexcept;

private:
    friend class detail::canceller;
    // From another thread: shuts the socket down, which ends any wait on it at once (a
    // blocking connection's close() ends its KILL's side connection so).
    void interrupt_io() noexcept;

    std::unique_ptr<detail::nb_impl> impl_;
};

}  // namespace ambisql
