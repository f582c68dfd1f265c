#pragma once
// The blocking connection. On a plain thread it blocks the thread; with a wait hook
// installed (e.g. on a fiber), each wait goes through the hook instead.
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "ambisql/config.hpp"
#include "ambisql/error.hpp"
#include "ambisql/format.hpp"
#include "ambisql/resultset.hpp"
#include "ambisql/pipeline.hpp"
#include "ambisql/row.hpp"
#include "ambisql/statement.hpp"

namespace ambisql {

namespace detail {
class connection_impl;
template <class T>
inline constexpr bool is_error_code_v = std::is_same_v<std::remove_cvref_t<T>, std::error_code>;
template <class T>
inline constexpr bool is_results_v = std::is_same_v<std::remove_cvref_t<T>, results>;
}  // namespace detail

class connection;

// A result read row by row (or batch by batch) as it arrives, so a huge result never
// has to fit in memory. Row views stay valid until the next call on the stream or the
// connection. The connection accepts no other command until the stream is finished
// (read to the end, or discard()).
class row_stream {
public:
    std::span<const column> columns() const;
    // The next row of the current resultset; false at its end.
    bool next(row_view& row);
    // Rows already received: reads more only when none are buffered. Returns how many
    // rows batch_row() can see (0 at the end of the resultset).
    std::size_t next_batch();
    row_view batch_row(std::size_t i) const;
    // Moves to the next resultset of a multi-statement query; false when there is none.
    bool next_result();
    // What the end of the current resultset reported (after next() returned false).
    const ok_info& ok() const;
    // Reads and drops the rest of the result.
    void discard();

private:
    friend class connection;
    row_stream(std::shared_ptr<detail::connection_impl> impl, std::uint64_t generation)
        : impl_(std::move(impl)), gen_(generation) {}
    // The connection's state, while this stream is still its current one; throws
    // errc::stale_handle once the connection closed, reconnected or started another stream.
    detail::connection_impl& impl() const;
    std::shared_ptr<detail::connection_impl> impl_;  // follows the connection when it is moved
    std::uint64_t gen_;
    std::size_t pos_ = 0;   // next row for next()
    std::size_t size_ = 0;  // rows in the current batch
    std::size_t base_ = 0;  // first row batch_row(0) shows
};

class connection {
public:
    connection();
    explicit connection(const config& cfg);  // connects
    ~connection();
    connection(connection&&) noexcept;
    connection& operator=(connection&&) noexcept;

    void connect(const config& cfg);
    void connect(const config& cfg, std::error_code& ec) noexcept;

    // Runs SQL (one or more statements) and buffers every result.
    results query(std::string_view sql);
    void query(std::string_view sql, results& out);
    void query(std::string_view sql, results& out, std::error_code& ec) noexcept;

    // With `?` placeholders replaced by escaped literals of args.
    template <class... Args>
        requires(sizeof...(Args) > 0 && !(detail::is_error_code_v<Args> || ...) && !(detail::is_results_v<Args> || ...))
    results query(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)...};
        results r;
        query_args(sql, a, r);
        return r;
    }
    void query_args(std::string_view sql, std::span<const sql_arg> args, results& out);
    void query_args(std::string_view sql, std::span<const sql_arg> args, results& out, std::error_code& ec) noexcept;

    // Streams the result instead of buffering it.
    row_stream stream(std::string_view sql);
    template <class... Args>
        requires(sizeof...(Args) > 0)
    row_stream stream(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)...};
        return stream_args(sql, a);
    }
    row_stream stream_args(std::string_view sql, std::span<const sql_arg> args);

    // ---- prepared statements (binary protocol: values travel typed, rows come binary)
    // Through the connection's statement cache (config::statement_cache_size): the first
    // execution of `sql` prepares it (in the same round trip on MariaDB), later ones reuse
    // it; the least recently used statements are closed on the server.
    template <class... Args>
        requires(!(detail::is_error_code_v<Args> || ...) && !(detail::is_results_v<Args> || ...))
    results execute(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        results r;
        execute_args(sql, std::span<const sql_arg>(a, sizeof...(Args)), r);
        return r;
    }
    void execute_args(std::string_view sql, std::span<const sql_arg> args, results& out);
    void execute_args(std::string_view sql, std::span<const sql_arg> args, results& out,
                      std::error_code& ec) noexcept;
    template <class... Args>
    row_stream stream_execute(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        return stream_execute_args(sql, std::span<const sql_arg>(a, sizeof...(Args)));
    }
    row_stream stream_execute_args(std::string_view sql, std::span<const sql_arg> args);

    // Runs `sql` once per row (`values` row-major, `width` per row) and returns the total
    // of affected rows (of rows returned, for INSERT ... RETURNING). MariaDB:
    // COM_STMT_BULK_EXECUTE in batches of about 1 MiB (one round trip each); other
    // servers: pipelined executes. All or nothing: the rows run inside BEGIN ... COMMIT
    // (or, in a transaction, a savepoint), and a failing row rolls every row back (on
    // transactional tables). Every value of a column must be of one kind (or NULL).
    std::uint64_t execute_many(std::string_view sql, std::span<const sql_arg> values, std::size_t width);
    std::uint64_t execute_many(std::string_view sql, const std::vector<std::vector<sql_arg>>& rows);

    // Explicit statements: yours to close (they are not in the cache).
    statement prepare(std::string_view sql);
    template <class... Args>
        requires(!(detail::is_error_code_v<Args> || ...) && !(detail::is_results_v<Args> || ...))
    results execute(const statement& st, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        results r;
        execute_args(st, std::span<const sql_arg>(a, sizeof...(Args)), r);
        return r;
    }
    void execute_args(const statement& st, std::span<const sql_arg> args, results& out);
    void execute_args(const statement& st, std::span<const sql_arg> args, results& out,
                      std::error_code& ec) noexcept;
    void close_statement(const statement& st);  // COM_STMT_CLOSE (no round trip)
    void reset_statement(const statement& st);  // COM_STMT_RESET
    std::size_t cached_statements() const noexcept;

    // Sends every stage of `p` in one write and reads the responses in order; each stage
    // gets its own result or error (see pipeline.hpp). Throws only when the connection
    // fails (then the unanswered stages carry that error too).
    void run(pipeline& p);

    void ping();
    void ping(std::error_code& ec) noexcept;
    void select_db(std::string_view database);
    // SET NAMES charset [COLLATE collation]. A character set changed this way is known to
    // the driver whatever the server reports; one changed by SQL is known only where the
    // server reports it (the driver asks every server that can to do so).
    void set_character_set(std::string_view charset, std::string_view collation = {});
    void reset_connection();  // COM_RESET_CONNECTION
    void close() noexcept;    // sends COM_QUIT when it can, then closes the socket

    bool is_open() const noexcept;  // connected and not broken
    const diagnostics& last_error() const noexcept;
    std::uint32_t connection_id() const noexcept;
    const std::string& server_version() const noexcept;
    std::uint16_t server_status() const noexcept;
    // Whether a transaction may be open: the last OK/EOF reported one (in_trans), or a
    // statement failed since then (an ERR packet carries no status, and a failed statement
    // may have begun a transaction and kept the locks it took). False means there is
    // nothing to commit or roll back: COMMIT and ROLLBACK would be no-ops.
    bool in_transaction() const noexcept;
    // Whether a command is unfinished: a streamed result not read to its end (a row_stream
    // still open), or an operation still running. No other command can start until then.
    bool result_pending() const noexcept;
    // Whether the session's state may have changed since clear_session_changed(): the
    // server reported a change (SESSION_STATE_CHANGED: variables, schema, and, with
    // session_track_state_change = ON, user variables, temporary tables and the like), an
    // insert set LAST_INSERT_ID, or a statement was sent or prepared whose text may leave
    // state the server does not report: table and named locks, HANDLERs, user variables
    // assigned within a statement, XA, SET TRANSACTION, stored routines, DDL. The pool
    // hands a connection on without a reset only when this is false.
    bool session_changed() const noexcept;
    void clear_session_changed() noexcept;
    bool tls_active() const noexcept;
    bool compressed() const noexcept;  // protocol compression is on
    std::string tls_version() const;
    // The session's character set (character_set_client) and default schema as the
    // handshake set them, set_character_set() since, and session tracking reported (SET
    // NAMES, USE ... as SQL); the character set is empty when it is unknown: changed where
    // the server does not report it (then text is not interpolated: errc::charset_unknown).
    const std::string& character_set() const noexcept;
    const std::string& current_schema() const noexcept;
    // How literals must be escaped on this connection right now.
    escaping escaping_rules() const noexcept;
    // Whether the server reports every change of the character set on this session.
    bool charset_tracked() const noexcept;
    // A quoted string literal for `text` (in the connection's character set); throws while
    // the character set is unknown, or for text that is not valid in it.
    std::string quote(std::string_view text) const;
    int native_handle() const noexcept;  // the socket, -1 when closed

private:
    friend class row_stream;
    row_stream make_stream();
    std::shared_ptr<detail::connection_impl> impl_;
};

}  // namespace ambisql
