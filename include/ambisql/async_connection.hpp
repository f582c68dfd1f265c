#pragma once
// Asio integration: every operation takes any completion token (callbacks,
// asio::use_awaitable, asio::use_future, asio::deferred, ...).
//
//   asio::awaitable<void> handler(ambisql::async_connection& c) {
//       co_await c.async_connect(asio::use_awaitable);
//       co_await c.async_query("SELECT SLEEP(1)", asio::use_awaitable);
//       auto& rows = c.result();
//   }
//
// It drives the same protocol operations as nb_connection: Asio only waits for the
// socket to become ready. Per-operation cancellation (cancellation slots, parallel
// groups, awaitable operators) is supported: a cancelled query is killed on the server
// with KILL QUERY over a side connection and its response drained, so the connection
// stays usable; a cancelled connect closes the connection (both complete with
// asio::error::operation_aborted; a command that completed before the KILL landed keeps
// its real outcome). nb_connection::cancel() does it, as for every other model.
// Completion: void(boost::system::error_code) (so use_awaitable throws boost::system::system_error on failure), wrapping the
// ambisql std::error_code; diagnostics in error(), rows in result().
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <system_error>

#include "ambisql/nb_connection.hpp"

namespace ambisql {

namespace asio = boost::asio;

class async_connection {
public:
    using executor_type = asio::any_io_executor;

    explicit async_connection(executor_type ex, const config& cfg = {})
        : ex_(ex), desc_(ex), timer_(ex), nb_(cfg) {}
    ~async_connection() { release_descriptor(); }
    async_connection(const async_connection&) = delete;
    async_connection& operator=(const async_connection&) = delete;

    executor_type get_executor() const { return ex_; }
    void set_config(const config& cfg) { nb_.set_config(cfg); }

    template <class Token>
    auto async_connect(Token&& token) {
        return run([](nb_connection& c) { c.start_connect(); }, op_kind::connect, std::forward<Token>(token));
    }
    // Buffers every resultset into result().
    template <class Token>
    auto async_query(std::string_view sql, Token&& token) {
        return run([sql = std::string(sql)](nb_connection& c) { c.start_query(sql); }, op_kind::query,
                   std::forward<Token>(token));
    }
    // With `?` placeholders. The values are copied now and escaped when the operation
    // starts (with asio::deferred that may be much later), by the rules then in force.
    template <class Token, class... Args>
        requires(sizeof...(Args) > 0)
    auto async_query_with(Token&& token, std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)...};
        return run(
            [sql = std::string(sql), own = detail::owned_args(std::span<const sql_arg>(a, sizeof...(Args)))](nb_connection& c) {
                c.start_query_args(sql, own.args);
            },
            op_kind::query, std::forward<Token>(token));
    }
    // Prepared statements through the statement cache (see connection::execute). The
    // arguments are copied, so they need not outlive the operation.
    template <class Token, class... Args>
    auto async_execute_with(Token&& token, std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        return run(
            [sql = std::string(sql), own = detail::owned_args(std::span<const sql_arg>(a, sizeof...(Args)))](nb_connection& c) {
                c.start_execute_args(sql, own.args);
            },
            op_kind::query, std::forward<Token>(token));
    }
    template <class Token>
    auto async_execute(std::string_view sql, Token&& token) {
        return async_execute_with(std::forward<Token>(token), sql);
    }
    template <class Token, class... Args>
    auto async_stream_execute_with(Token&& token, std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        return run(
            [sql = std::string(sql), own = detail::owned_args(std::span<const sql_arg>(a, sizeof...(Args)))](nb_connection& c) {
                c.start_stream_execute_args(sql, own.args);
            },
            op_kind::query, std::forward<Token>(token));
    }
    // Explicit statements: async_prepare(), then prepared().
    template <class Token>
    auto async_prepare(std::string_view sql, Token&& token) {
        return run([sql = std::string(sql)](nb_connection& c) { c.start_prepare(sql); }, op_kind::query,
                   std::forward<Token>(token));
    }
    const statement& prepared() const noexcept { return nb_.prepared(); }
    template <class Token, class... Args>
    auto async_execute_statement_with(Token&& token, const statement& st, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        return run(
            [st, own = detail::owned_args(std::span<const sql_arg>(a, sizeof...(Args)))](nb_connection& c) {
                c.start_execute_args(st, own.args);
            },
            op_kind::query, std::forward<Token>(token));
    }
    template <class Token>
    auto async_close_statement(const statement& st, Token&& token) {
        return run([st](nb_connection& c) { c.start_close_statement(st); }, op_kind::query,
                   std::forward<Token>(token));
    }

    // See connection::execute_many; the values are copied. Total: result().affected_rows().
    template <class Token>
    auto async_execute_many(std::string_view sql, std::span<const sql_arg> values, std::size_t width,
                            Token&& token) {
        return run(
            [sql = std::string(sql), own = detail::owned_args(values), width](nb_connection& c) {
                c.start_execute_many(sql, own.args, width);
            },
            op_kind::query, std::forward<Token>(token));
    }

    // Every stage of `p` (which must outlive the operation) in one write; see pipeline.hpp.
    template <class Token>
    auto async_run(pipeline& p, Token&& token) {
        return run([pp = &p](nb_connection& c) { c.start_pipeline(*pp); }, op_kind::query,
                   std::forward<Token>(token));
    }

    template <class Token>
    auto async_ping(Token&& token) {
        return run([](nb_connection& c) { c.start_ping(); }, op_kind::query, std::forward<Token>(token));
    }
    template <class Token>
    auto async_select_db(std::string_view db, Token&& token) {
        return run([db = std::string(db)](nb_connection& c) { c.start_select_db(db); }, op_kind::query,
                   std::forward<Token>(token));
    }
    template <class Token>
    auto async_set_character_set(std::string_view charset, std::string_view collation, Token&& token) {
        return run([cs = std::string(charset), co = std::string(collation)](
                       nb_connection& c) { c.start_set_character_set(cs, co); },
                   op_kind::query, std::forward<Token>(token));
    }
    template <class Token>
    auto async_reset_connection(Token&& token) {
        return run([](nb_connection& c) { c.start_reset_connection(); }, op_kind::query,
                   std::forward<Token>(token));
    }

    // Streaming: async_stream() reads the first resultset's header; each
    // async_read_rows() delivers a batch (batch_size() == 0 at the end of the resultset);
    // async_next_result() moves on while more_results().
    template <class Token>
    auto async_stream(std::string_view sql, Token&& token) {
        return run([sql = std::string(sql)](nb_connection& c) { c.start_stream(sql); }, op_kind::query,
                   std::forward<Token>(token));
    }
    template <class Token>
    auto async_read_rows(Token&& token) {
        return run([](nb_connection& c) { c.start_read_rows(); }, op_kind::query, std::forward<Token>(token));
    }
    template <class Token>
    auto async_next_result(Token&& token) {
        return run([](nb_connection& c) { c.start_next_result(); }, op_kind::query, std::forward<Token>(token));
    }
    std::span<const column> stream_columns() const noexcept { return nb_.stream_columns(); }
    std::size_t batch_size() const noexcept { return nb_.batch_size(); }
    row_view batch_row(std::size_t i) const noexcept { return nb_.batch_row(i); }
    bool rows_pending() const noexcept { return nb_.rows_pending(); }
    bool more_results() const noexcept { return nb_.more_results(); }

    const results& result() const noexcept { return nb_.result(); }
    const diagnostics& error() const noexcept { return nb_.error(); }
    bool is_open() const noexcept { return nb_.is_open(); }
    std::uint16_t server_status() const noexcept { return nb_.server_status(); }  // in transaction, ...
    bool in_transaction() const noexcept { return nb_.in_transaction(); }  // see connection's
    bool result_pending() const noexcept { return nb_.result_pending(); }  // see connection's
    bool session_changed() const noexcept { return nb_.session_changed(); }  // see connection::session_changed()
    void clear_session_changed() noexcept { nb_.clear_session_changed(); }
    std::uint32_t connection_id() const noexcept { return nb_.connection_id(); }
    bool tls_active() const noexcept { return nb_.tls_active(); }
    bool compressed() const noexcept { return nb_.compressed(); }
    void close() noexcept {
        release_descriptor();
        nb_.close();
    }

private:
    enum class op_kind { connect, query };


    // Asio waits on the connection's socket without owning it.
    void sync_descriptor() {
        int fd = nb_.fileno();
        if (desc_.is_open() && desc_.native_handle() == fd) return;
        release_descriptor();
        if (fd >= 0) desc_.assign(fd);
    }
    void release_descriptor() noexcept {
        if (desc_.is_open()) {
            boost::system::error_code ignored;
            desc_.cancel(ignored);
            (void)desc_.release();
        }
    }

    template <class Start>
    struct op;

    template <class Start, class Token>
    auto run(Start&& start, op_kind kind, Token&& token) {
        return asio::async_compose<Token, void(boost::system::error_code)>(
            op<std::decay_t<Start>>{this, std::forward<Start>(start), kind}, token, ex_);
    }

    executor_type ex_;
    asio::posix::stream_descriptor desc_;
    asio::steady_timer timer_;
    nb_connection nb_;
    bool timed_out_ = false;
};

// The one composed operation: start, then poll / wait until done. Cancellation is
// nb_connection::cancel() (the one implementation every model shares): the command is
// killed over a side connection and its response drained while this operation keeps
// polling; the socket to wait on may change meanwhile (sync_descriptor follows it).
template <class Start>
struct async_connection::op {
    async_connection* c;
    Start start;
    op_kind kind;
    bool started = false;

    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
        if (!started) {
            started = true;
            if (kind == op_kind::connect) c->release_descriptor();
            try {
                start(c->nb_);
            } catch (const ambisql::error& e) {
                return self.complete(boost::system::error_code(e.code()));
            }
            return step(self);
        }
        c->timer_.cancel();
        if (ec == asio::error::operation_aborted && !c->timed_out_ &&
            self.get_cancellation_state().cancelled() != asio::cancellation_type::none) {
            // From here on the operation finishes by itself; further cancellation is ignored.
            self.reset_cancellation_state(asio::disable_cancellation());
            c->nb_.cancel();
        }
        step(self);
    }

    // poll() reports want_read right after sending a request, without a receive that
    // would fail with EAGAIN. Asio's reactor is edge-triggered, so input that arrived
    // while the connection was idle is not seen by that wait; the server sends nothing
    // unsolicited but a close, and a closed peer answers the request with a reset (TCP)
    // or fails the send (unix socket), which ends the wait.
    template <class Self>
    void step(Self& self) {
        poll_result w = c->nb_.poll();
        if (w.done()) return finish(self);
        if (kind == op_kind::connect) c->release_descriptor();  // a new socket may reuse the number
        c->sync_descriptor();
        c->timed_out_ = false;
        if (w.deadline() != clock::time_point::max()) {
            c->timer_.expires_at(w.deadline());
            c->timer_.async_wait([conn = c](boost::system::error_code tec) {
                if (!tec) {
                    conn->timed_out_ = true;
                    boost::system::error_code ignored;
                    conn->desc_.cancel(ignored);
                }
            });
        }
        c->desc_.async_wait(w.events() & wait_for::read ? asio::posix::stream_descriptor::wait_read
                                                        : asio::posix::stream_descriptor::wait_write,
                            std::move(self));
    }

    // A cancelled operation completes with asio::error::operation_aborted; one that
    // completed (or failed by itself) before the KILL landed, with its real outcome.
    template <class Self>
    void finish(Self& self) {
        if (!c->nb_.is_open()) c->release_descriptor();  // closed: the number may be reused
        if (c->nb_.ok()) return self.complete(boost::system::error_code());
        if (c->nb_.error().code == errc::cancelled)
            return self.complete(boost::system::error_code(asio::error::operation_aborted));
        self.complete(boost::system::error_code(c->nb_.error().code));
    }
};

}  // namespace ambisql
