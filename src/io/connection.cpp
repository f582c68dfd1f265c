// The blocking connection: the one driver loop that moves bytes for the sans-IO session.
#include "ambisql/connection.hpp"

#include "ambisql/detail/host_plan.hpp"

#include "io/cancel.hpp"
#include "io/channel.hpp"

namespace ambisql {

namespace detail {

class connection_impl : public channel {
public:
    std::atomic<bool> busy{false};
    std::atomic<bool> close_requested{false};  // close() from another thread during an operation
    std::uint64_t stream_gen = 0;  // the current row_stream's; a new one per stream, connect, close

    // Closes, and every row_stream of this connection with it.
    void shut() noexcept {
        ++stream_gen;
        close();
    }

    canceller killer;  // the side connection that kills a cancelled command

    // Drives the session's current operation to its end, blocking (or waiting through
    // the thread's wait hook). A wait that reports errc::cancelled kills the command on
    // the server (canceller), reads the rest of its response, and ends with
    // cancel_verdict(); a second cancellation (or one during connect, `killable` false)
    // closes instead. `deadline` (connect) bounds the whole operation, not each wait.
    bool run(std::chrono::milliseconds read_timeout, std::chrono::milliseconds write_timeout, bool killable = true,
             clock::time_point deadline = clock::time_point::max()) {
        bool cancelled = false;
        for (;;) {
            if (deadline != clock::time_point::max()) {
                const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
                if (left.count() <= 0) {
                    io_failed(errc::timeout, "connect", cfg.connect_timeout);
                    read_timeout = write_timeout = std::chrono::milliseconds(1);
                } else {
                    read_timeout = write_timeout = left;
                }
            }
            switch (sess.resume()) {
                case proto::next_action::done:
                    if (cancelled) {
                        if (killer.discard_rest(sess)) continue;  // a stream is read to its end
                        diag = killer.conclude(sess);
                        if (!sess.connected()) sock.close();
                        return diag.kind == error_kind::none;
                    }
                    if (sess.failed()) {
                        diag = sess.diag();
                        if (sess.broken()) sock.close();
                        return false;
                    }
                    return true;
                case proto::next_action::write: {
                    std::error_code ec;
                    std::size_t n = sock.write_some(sess.write_buffer(), write_timeout, ec);
                    if (!ec)
                        sess.on_written(n);
                    else if (ec == errc::cancelled && killable)
                        cancelled ? give_up(true) : void(cancelled = kill());
                    else
                        io_failed(ec, "write", write_timeout);
                    break;
                }
                case proto::next_action::read: {
                    std::error_code ec;
                    io::read_pacing pace;
                    auto timeout = read_timeout;
                    if (cancelled) {
                        // Draining: the KILL goes again if the command outlasts its schedule,
                        // and the connection is closed at the cancellation's give-up time.
                        const clock::time_point until = killer.bound(killer.retry_at());
                        if (until != clock::time_point::max()) {
                            const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - clock::now());
                            timeout = std::max(std::chrono::milliseconds(1),
                                               timeout.count() > 0 ? std::min(timeout, left) : left);
                        }
                    } else if (sess.pipelining()) {
                        pace.spin = cfg.pipeline_spin;
                    } else if (sess.bulk_rows()) {
                        pace.nap = cfg.read_coalescing;
                    }
                    std::size_t n = sock.read_some(sess.read_buffer(), timeout, ec, pace);
                    if (!ec)
                        sess.on_read(n);
                    else if (ec == errc::timeout && cancelled && killer.overdue(clock::now()))
                        give_up(false);
                    else if (ec == errc::timeout && cancelled && clock::now() >= killer.retry_at())
                        kill_again();
                    else if (ec == errc::cancelled && killable)
                        cancelled ? give_up(true) : void(cancelled = kill());
                    else
                        io_failed(ec, "read", timeout);
                    break;
                }
            }
        }
    }

    // Starts killing the running command; true (always: a KILL that cannot be delivered
    // has closed the connection, which the operation then reports).
    bool kill() {
        killer.start(cfg, sess.connection_id());
        drive_killer();
        return true;
    }
    // The cancellation rule's last resort (io/cancel.hpp): interrupted again, or past the
    // give-up time: the connection is closed.
    void give_up(bool again) {
        killer.finish();
        sess.on_io_error(error_kind::client, errc::cancelled, gave_up(again, cfg.cancel_timeout).message);
        sock.close();
    }
    void kill_again() {
        killer.again();
        drive_killer();
    }
    // Runs the side connection to the KILL's answer through the same waits as every other
    // (the wait hook, or poll(2)). Undeliverable, cancelled once more, or past the give-up
    // time: the connection is closed.
    void drive_killer() {
        for (;;) {
            auto st = killer.poll();
            if (st == canceller::state::delivered) return;
            diagnostics why = killer.error();
            if (st == canceller::state::sending) {
                // (a close() from elsewhere shuts the side connection down as well; one
                // made after that close's interrupt() does not wait)
                auto ec = close_requested.load(std::memory_order_acquire)
                              ? make_error_code(errc::connection_closed)
                              : io::wait_fd(current_wait_hook(), killer.fileno(), killer.events(),
                                            killer.bound(killer.deadline()));
                if (ec == errc::timeout && killer.overdue(clock::now())) return give_up(false);
                if (ec == errc::cancelled) return give_up(true);
                if (!ec || ec == errc::timeout) continue;  // the side connection keeps its own time
                why.message = ec.message();
            }
            killer.finish();
            sess.on_io_error(error_kind::client, errc::cancelled, cancel_failed(why).message);
            sock.close();
            return;
        }
    }

    // Starts an operation with `start` and runs it; false with diag set on failure.
    template <class Start>
    bool op(Start&& start) {
        diag.clear();
        if (!start()) {
            diag = sess.diag();
            return false;
        }
        if (run(cfg.read_timeout, cfg.write_timeout)) return true;
        if (close_requested.load(std::memory_order_acquire)) {
            diag.clear();
            diag.kind = error_kind::client;
            diag.code = errc::connection_closed;
            diag.message = "the connection was closed (close() from another thread) while an operation was running";
            diag.connection_usable = false;
        }
        return false;
    }

    // One host, or (several hosts, Galera checks) each in turn until one works.
    bool connect(const config& c) {
        if (!detail::host_plan::needed(c)) return connect_one(c);
        detail::host_plan plan(c);
        config one;
        diagnostics last;
        while (plan.next(one)) {
            if (!connect_one(one)) {
                last = diag;
                plan.failed(diag);
                continue;
            }
            results r;
            if (const char* q = plan.galera_query()) {
                if (!op([&] { return sess.start_query(q, &r); })) {
                    last = diag;
                    plan.failed(diag);
                    close();
                    continue;
                }
                if (!detail::host_plan::galera_ok(r)) {
                    plan.not_synced(r);
                    close();
                    continue;
                }
            }
            if (!plan.session_setup().empty() && !op([&] { return sess.start_query(plan.session_setup(), &r); })) {
                last = diag;
                plan.failed(diag);
                close();
                continue;
            }
            plan.succeeded();
            return true;
        }
        diag = plan.exhausted(last);
        return false;
    }

    bool connect_one(const config& c) {
        close();
        ++stream_gen;
        cfg = c;
        diag.clear();
        // One deadline for the whole connect (TCP, TLS, authentication): a server that
        // trickles bytes cannot keep it going.
        const auto deadline = cfg.connect_timeout.count() > 0 ? clock::now() + cfg.connect_timeout
                                                              : clock::time_point::max();
        std::string msg;
        sock.configure(cfg);
        std::error_code ec = cfg.unix_socket.empty()
                                 ? sock.connect_tcp(cfg.host_address.empty() ? cfg.host : cfg.host_address, cfg.port,
                                                    deadline, msg)
                                 : sock.connect_unix(cfg.unix_socket, deadline, msg);
        if (ec) {
            connect_failed(ec, std::move(msg));
            return false;
        }
        if (!start_handshake()) return false;
        return run(cfg.connect_timeout, cfg.connect_timeout, false, deadline);
    }
};

namespace {

// One operation at a time: the guard of the running one. When close() was called from
// another thread meanwhile, the connection is closed as the operation ends.
struct op_guard {
    connection_impl& c;
    bool ok;
    wait_hook* hook = nullptr;  // told where the operation begins and ends
    explicit op_guard(connection_impl& impl) : c(impl), ok(!impl.busy.exchange(true, std::memory_order_acquire)) {
        if (ok && (hook = current_wait_hook())) hook->operation_begins();
    }
    ~op_guard() {
        if (!ok) return;
        if (c.close_requested.exchange(false, std::memory_order_acq_rel)) c.shut();
        c.busy.store(false, std::memory_order_release);
        if (hook) hook->operation_ends();
    }
};

diagnostics in_progress_diag() {
    diagnostics d;
    d.kind = error_kind::client;
    d.code = errc::operation_in_progress;
    d.message = "operation in progress: another operation is running on this connection";
    return d;
}

[[noreturn]] void throw_in_progress() { throw error(in_progress_diag()); }

}  // namespace
}  // namespace detail

using detail::op_guard;

namespace {
void check(detail::connection_impl& c, bool ok) {
    if (!ok) throw error(c.diag);
}
}  // namespace

connection::connection() : impl_(std::make_shared<detail::connection_impl>()) {}
connection::connection(const config& cfg) : connection() { connect(cfg); }
connection::~connection() {
    if (impl_) impl_->shut();
}
connection::connection(connection&&) noexcept = default;
connection& connection::operator=(connection&& o) noexcept {
    if (this != &o) {
        if (impl_) impl_->shut();
        impl_ = std::move(o.impl_);
    }
    return *this;
}

void connection::connect(const config& cfg) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->connect(cfg));
}

void connection::connect(const config& cfg, std::error_code& ec) noexcept {
    op_guard g(*impl_);
    if (!g.ok) {
        ec = errc::operation_in_progress;
        return;
    }
    ec = impl_->connect(cfg) ? std::error_code() : impl_->diag.code;
}

results connection::query(std::string_view sql) {
    results r;
    query(sql, r);
    return r;
}

void connection::query(std::string_view sql, results& out) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_query(sql, &out); }));
}

void connection::query(std::string_view sql, results& out, std::error_code& ec) noexcept {
    op_guard g(*impl_);
    if (!g.ok) {
        ec = errc::operation_in_progress;
        return;
    }
    ec = impl_->op([&] { return impl_->sess.start_query(sql, &out); }) ? std::error_code() : impl_->diag.code;
}

void connection::query_args(std::string_view sql, std::span<const sql_arg> args, results& out) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_query(sql, args, &out); }));
}

void connection::query_args(std::string_view sql, std::span<const sql_arg> args, results& out,
                            std::error_code& ec) noexcept {
    op_guard g(*impl_);
    if (!g.ok) {
        ec = errc::operation_in_progress;
        return;
    }
    ec = impl_->op([&] { return impl_->sess.start_query(sql, args, &out); }) ? std::error_code()
                                                                              : impl_->diag.code;
}

row_stream connection::stream(std::string_view sql) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_query(sql, nullptr); }));
    return make_stream();
}

row_stream connection::stream_args(std::string_view sql, std::span<const sql_arg> args) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_query(sql, args, nullptr); }));
    return make_stream();
}

void connection::execute_args(std::string_view sql, std::span<const sql_arg> args, results& out) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_execute(sql, args, &out); }));
}

void connection::execute_args(std::string_view sql, std::span<const sql_arg> args, results& out,
                              std::error_code& ec) noexcept {
    op_guard g(*impl_);
    if (!g.ok) {
        ec = errc::operation_in_progress;
        return;
    }
    ec = impl_->op([&] { return impl_->sess.start_execute(sql, args, &out); }) ? std::error_code() : impl_->diag.code;
}

row_stream connection::stream_execute_args(std::string_view sql, std::span<const sql_arg> args) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_execute(sql, args, nullptr); }));
    return make_stream();
}

statement connection::prepare(std::string_view sql) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    statement st;
    check(*impl_, impl_->op([&] { return impl_->sess.start_prepare(sql, &st); }));
    return st;
}

void connection::execute_args(const statement& st, std::span<const sql_arg> args, results& out) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_execute(st, args, &out); }));
}

void connection::execute_args(const statement& st, std::span<const sql_arg> args, results& out,
                              std::error_code& ec) noexcept {
    op_guard g(*impl_);
    if (!g.ok) {
        ec = errc::operation_in_progress;
        return;
    }
    ec = impl_->op([&] { return impl_->sess.start_execute(st, args, &out); }) ? std::error_code() : impl_->diag.code;
}

void connection::close_statement(const statement& st) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_close_statement(st); }));
}

void connection::reset_statement(const statement& st) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_reset_statement(st); }));
}

std::size_t connection::cached_statements() const noexcept { return impl_->sess.cached_statements(); }

std::uint64_t connection::execute_many(std::string_view sql, std::span<const sql_arg> values, std::size_t width) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    results r;
    check(*impl_, impl_->op([&] { return impl_->sess.start_execute_many(sql, values, width, &r); }));
    std::uint64_t n = 0;  // one OK (bulk, summed), or each row's result (RETURNING)
    for (const resultset& s : r) n += s.has_rows() ? s.size() : s.affected_rows();
    return n;
}

std::uint64_t connection::execute_many(std::string_view sql, const std::vector<std::vector<sql_arg>>& rows) {
    std::vector<sql_arg> flat;
    const std::size_t width = rows.empty() ? 0 : rows.front().size();
    flat.reserve(rows.size() * width);
    for (const auto& r : rows) {
        if (r.size() != width) {
            diagnostics d;
            d.kind = error_kind::client;
            d.code = errc::placeholder_mismatch;
            d.message = "execute_many: rows of different lengths";
            throw error(std::move(d));
        }
        flat.insert(flat.end(), r.begin(), r.end());
    }
    if (rows.empty()) return 0;
    return execute_many(sql, flat, width);
}

void connection::run(pipeline& p) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_pipeline(p); }));
}

void connection::ping() {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_ping(); }));
}

void connection::ping(std::error_code& ec) noexcept {
    op_guard g(*impl_);
    if (!g.ok) {
        ec = errc::operation_in_progress;
        return;
    }
    ec = impl_->op([&] { return impl_->sess.start_ping(); }) ? std::error_code() : impl_->diag.code;
}

void connection::select_db(std::string_view database) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_init_db(database); }));
}

void connection::set_character_set(std::string_view charset, std::string_view collation) {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_set_charset(charset, collation); }));
}

void connection::reset_connection() {
    op_guard g(*impl_);
    if (!g.ok) detail::throw_in_progress();
    check(*impl_, impl_->op([&] { return impl_->sess.start_reset_connection(); }));
}

void connection::close() noexcept {
    if (!impl_) return;
    {
        op_guard g(*impl_);
        if (g.ok) {
            impl_->shut();
            return;
        }
    }
    // An operation runs on another thread: it is interrupted (fails with
    // errc::connection_closed) and the connection is closed as it ends.
    impl_->close_requested.store(true, std::memory_order_release);
    impl_->sock.interrupt();
    impl_->killer.interrupt();  // (its KILL's side connection, if it waits on that)
    op_guard g(*impl_);  // it may have ended meanwhile, before seeing the request
    if (g.ok && impl_->close_requested.exchange(false, std::memory_order_acq_rel)) impl_->shut();
}

bool connection::is_open() const noexcept { return impl_->sess.connected() && impl_->sock.is_open(); }
const diagnostics& connection::last_error() const noexcept { return impl_->diag; }
std::uint32_t connection::connection_id() const noexcept { return impl_->sess.connection_id(); }
const std::string& connection::server_version() const noexcept { return impl_->sess.server_version(); }
std::uint16_t connection::server_status() const noexcept { return impl_->sess.status(); }
bool connection::in_transaction() const noexcept { return impl_->sess.may_be_in_transaction(); }
bool connection::result_pending() const noexcept { return impl_->sess.in_progress() || impl_->sess.result_pending(); }
bool connection::session_changed() const noexcept { return impl_->sess.state_changed(); }
void connection::clear_session_changed() noexcept { impl_->sess.clear_state_changed(); }
bool connection::tls_active() const noexcept { return impl_->sess.tls_active(); }
bool connection::compressed() const noexcept { return impl_->sess.compressed(); }
std::string connection::tls_version() const { return impl_->sess.tls_version(); }
escaping connection::escaping_rules() const noexcept { return impl_->sess.escaping_rules(); }
bool connection::charset_tracked() const noexcept { return impl_->sess.charset_tracked(); }
const std::string& connection::character_set() const noexcept { return impl_->sess.charset(); }
const std::string& connection::current_schema() const noexcept { return impl_->sess.schema(); }
int connection::native_handle() const noexcept { return impl_->sock.fd(); }

std::string connection::quote(std::string_view text) const {
    std::string out;
    if (auto ec = append_string_literal(out, text, escaping_rules())) {
        diagnostics d;
        d.kind = error_kind::client;
        d.code = ec;
        d.message = "cannot quote text for this connection's character set: " + ec.message();
        throw error(std::move(d));
    }
    return out;
}

// ---------------------------------------------------------------- row_stream

row_stream connection::make_stream() { return row_stream(impl_, ++impl_->stream_gen); }

detail::connection_impl& row_stream::impl() const {
    if (!impl_ || impl_->stream_gen != gen_) {
        diagnostics d;
        d.kind = error_kind::client;
        d.code = errc::stale_handle;
        d.message = "this row_stream's result is gone: its connection was closed, reconnected or started another "
                    "stream";
        throw error(std::move(d));
    }
    return *impl_;
}

std::span<const column> row_stream::columns() const { return impl().sess.stream_header().columns(); }
const ok_info& row_stream::ok() const { return impl().sess.stream_header().ok(); }

std::size_t row_stream::next_batch() {
    auto& impl = this->impl();
    if (pos_ < size_) {  // rows still unread in this batch: hand them out first
        base_ = pos_;
        std::size_t n = size_ - pos_;
        pos_ = size_;
        return n;
    }
    pos_ = size_ = base_ = 0;
    if (impl.sess.stream() != proto::session::stream_state::rows) return 0;
    op_guard g(impl);
    if (!g.ok) detail::throw_in_progress();
    check(impl, impl.op([&] { return impl.sess.start_read_rows(); }));
    size_ = pos_ = impl.sess.batch_size();
    return size_;
}

row_view row_stream::batch_row(std::size_t i) const { return impl().sess.batch_row(base_ + i); }

bool row_stream::next(row_view& row) {
    if (pos_ >= size_) {
        if (next_batch() == 0) return false;
        pos_ = 0;  // next_batch() marked the batch consumed; next() walks it instead
    }
    row = impl().sess.batch_row(pos_++);
    return true;
}

bool row_stream::next_result() {
    auto& impl = this->impl();
    pos_ = size_ = base_ = 0;
    op_guard g(impl);
    if (!g.ok) detail::throw_in_progress();
    if (impl.sess.stream() == proto::session::stream_state::rows) {
        // Skip what is left of this resultset.
        while (impl.sess.stream() == proto::session::stream_state::rows)
            check(impl, impl.op([&] { return impl.sess.start_read_rows(); }));
    }
    if (impl.sess.stream() != proto::session::stream_state::set_done ||
        !(impl.sess.status() & server_status::more_results_exist))
        return false;
    check(impl, impl.op([&] { return impl.sess.start_next_result(); }));
    return true;
}

void row_stream::discard() {
    auto& impl = this->impl();
    pos_ = size_ = base_ = 0;
    op_guard g(impl);
    if (!g.ok) detail::throw_in_progress();
    check(impl, impl.op([&] { return impl.sess.start_discard(); }));
}

}  // namespace ambisql
