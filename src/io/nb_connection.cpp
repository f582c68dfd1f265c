// The non-blocking driver: poll() moves bytes until the socket would block, then says
// what it waits for. The protocol is the session's; this file only moves bytes.
#include "ambisql/nb_connection.hpp"

#include "ambisql/detail/host_plan.hpp"

#include "io/cancel.hpp"
#include "io/channel.hpp"

namespace ambisql {

namespace detail {

class nb_impl : public channel {
public:
    enum class phase : std::uint8_t { idle, connecting, running };
    phase ph = phase::idle;
    results res;
    statement prepared;
    clock::time_point connect_deadline = clock::time_point::max();
    clock::time_point wait_deadline = clock::time_point::max();
    bool waiting = false;
    bool read_first = false;  // expect_input(): input may already be waiting
    // Cancellation (cancel()): requested, then the side connection kills the command
    // (fileno() is its socket meanwhile), then the command's response is drained.
    enum class cancel_phase : std::uint8_t { none, requested, killing, draining };
    cancel_phase cph = cancel_phase::none;
    canceller killer;

    void cancel() {
        if (ph == phase::idle) return;
        if (ph == phase::connecting || !sess.connected() || plan) {  // a connect: abandoned
            if (plan) {
                end_plan();
                cfg = plan_cfg;
            }
            channel::close();
            diag.clear();
            diag.kind = error_kind::client;
            diag.code = errc::cancelled;
            diag.message = "operation cancelled: the connect was abandoned";
            diag.connection_usable = false;
            ph = phase::idle;
            waiting = false;
            connect_deadline = clock::time_point::max();
            return;
        }
        if (cph != cancel_phase::none) return give_up(true);  // the rule (io/cancel.hpp): again closes
        cph = cancel_phase::requested;
    }

    // The cancellation rule's last resort: the connection is closed and the operation ends
    // with gave_up().
    void give_up(bool again) {
        killer.finish();
        cph = cancel_phase::none;
        channel::close();
        diag = gave_up(again, cfg.cancel_timeout);
        ph = phase::idle;
        waiting = read_first = false;
        connect_deadline = clock::time_point::max();
    }

    // Moves a cancellation's KILL on; a result while the side connection waits.
    bool drive_killer(poll_result& out) {
        if (cph == cancel_phase::requested) {
            killer.start(cfg, sess.connection_id());
            cph = cancel_phase::killing;
        }
        if (cph != cancel_phase::killing) return false;
        auto st = killer.poll();
        if (st == canceller::state::sending) {
            out = {killer.events() & wait_for::read ? poll_result::status::want_read : poll_result::status::want_write,
                   killer.deadline()};
            return true;
        }
        if (st == canceller::state::failed) {
            diagnostics why = killer.error();
            killer.finish();
            sess.on_io_error(error_kind::client, errc::cancelled, cancel_failed(why).message);
        }
        cph = cancel_phase::draining;
        waiting = false;
        return false;
    }

    static clock::time_point after(std::chrono::milliseconds t) {
        return t.count() > 0 ? clock::now() + t : clock::time_point::max();
    }

    [[noreturn]] static void throw_in_progress() {
        diagnostics d;
        d.kind = error_kind::client;
        d.code = errc::operation_in_progress;
        d.message = "operation in progress: another operation is running on this connection";
        throw ambisql::error(std::move(d));
    }

    // Starts a session operation; a refusal is reported by the next poll() as done.
    template <class Start>
    void begin(Start&& start) {
        if (ph != phase::idle) throw_in_progress();
        diag.clear();
        waiting = false;
        if (!start()) {
            diag = sess.diag();
            return;  // ph stays idle: poll() says done at once
        }
        ph = phase::running;
    }

    // The timeout that applies to the wait about to start.
    std::chrono::milliseconds timeout_for(bool reading) const {
        if (connect_deadline != clock::time_point::max()) return cfg.connect_timeout;
        return reading ? cfg.read_timeout : cfg.write_timeout;
    }

    poll_result want(poll_result::status s, bool reading) {
        if (!waiting) {
            waiting = true;
            wait_deadline = connect_deadline != clock::time_point::max() ? connect_deadline
                                                                        : after(timeout_for(reading));
        }
        return {s, wait_deadline};
    }

    // Waiting for the response; while draining, no later than the next KILL is due.
    poll_result want_input() {
        poll_result w = want(poll_result::status::want_read, true);
        if (cph == cancel_phase::draining && killer.retry_at() < w.deadline()) return {w.state(), killer.retry_at()};
        return w;
    }

    bool expired() const { return waiting && wait_deadline != clock::time_point::max() && clock::now() >= wait_deadline; }

    poll_result done() {
        if (cph != cancel_phase::none) {
            cph = cancel_phase::none;
            ph = phase::idle;
            waiting = read_first = false;
            diag = killer.conclude(sess);
            if (!sess.connected()) sock.close();
            return {poll_result::status::done, clock::time_point::max()};
        }
        ph = phase::idle;
        waiting = false;
        read_first = false;
        connect_deadline = clock::time_point::max();
        if (sess.failed()) {
            diag = sess.diag();
            if (sess.broken()) sock.close();
        }
        return {poll_result::status::done, clock::time_point::max()};
    }

    // One step; while a cancellation runs, no wait outlasts its give-up time, at which the
    // connection is closed.
    poll_result poll() {
        if (cph != cancel_phase::none && killer.overdue(clock::now())) give_up(false);
        poll_result r = step();
        if (r.done() || cph == cancel_phase::none) return r;
        return {r.state(), killer.bound(r.deadline())};
    }

    poll_result step() {
        if (ph == phase::idle) return {poll_result::status::done, clock::time_point::max()};
        if (ph == phase::connecting) {
            std::string msg;
            bool in_progress = false;
            if (auto ec = sock.finish_connect(in_progress, msg)) {
                connect_failed(ec, std::move(msg));
                ph = phase::idle;
                connect_deadline = clock::time_point::max();
                return {poll_result::status::done, clock::time_point::max()};
            }
            if (in_progress) {
                if (expired()) {
                    connect_failed(errc::timeout, "connect timed out after " +
                                                      std::to_string(cfg.connect_timeout.count()) + " ms" +
                                                      sock.connect_pending_reason());
                    ph = phase::idle;
                    return {poll_result::status::done, clock::time_point::max()};
                }
                return want(sock.connect_events() == wait_for::read ? poll_result::status::want_read
                                                                   : poll_result::status::want_write,
                            false);
            }
            waiting = false;
            if (!start_handshake()) {
                ph = phase::idle;
                return {poll_result::status::done, clock::time_point::max()};
            }
            ph = phase::running;
        }
        // A response cannot have arrived in the instant after this call sent a request:
        // wait for it instead of making a receive that would fail with EAGAIN.
        bool sent = false;
        for (;;) {
            if (poll_result k{poll_result::status::done, {}}; drive_killer(k)) return k;
            switch (sess.resume()) {
                case proto::next_action::done:
                    // A cancelled stream is read to its end so the connection can take a command.
                    if (cph == cancel_phase::draining && killer.discard_rest(sess)) continue;
                    return done();
                case proto::next_action::write: {
                    std::size_t n = 0;
                    std::error_code ec;
                    auto st = sock.try_write(sess.write_buffer(), n, ec);
                    if (st == io::socket::io_status::would_block) {
                        if (expired()) {
                            io_failed(errc::timeout, "write", timeout_for(false));
                            continue;
                        }
                        return want(poll_result::status::want_write, false);
                    }
                    waiting = false;
                    if (st == io::socket::io_status::error) {
                        io_failed(ec, "write", timeout_for(false));
                    } else {
                        sess.on_written(n);
                        sent = true;
                    }
                    break;
                }
                case proto::next_action::read: {
                    if (sent && !read_first) return want_input();
                    std::size_t n = 0;
                    std::error_code ec;
                    auto st = sock.try_read(sess.read_buffer(), n, ec);
                    if (st == io::socket::io_status::would_block) {
                        if (expired()) {
                            io_failed(errc::timeout, "read", timeout_for(true));
                            continue;
                        }
                        // Draining a cancelled command that outlasts the KILL's schedule: again.
                        if (cph == cancel_phase::draining && clock::now() >= killer.retry_at()) {
                            killer.again();
                            cph = cancel_phase::killing;
                            continue;
                        }
                        return want_input();
                    }
                    waiting = false;
                    if (st == io::socket::io_status::error)
                        io_failed(ec, "read", timeout_for(true));
                    else
                        sess.on_read(n);
                    break;
                }
            }
        }
    }

    // ---- several hosts / Galera checks: host_plan drives the connect through steps
    // (connect a host, check the Galera state, set the session up), the next host after a
    // failure, as the blocking connect does.
    enum class plan_step : std::uint8_t { none, connecting, galera, setup };
    std::unique_ptr<host_plan> plan;
    plan_step pstep = plan_step::none;
    config plan_cfg;  // the config as given (with its hosts)
    results plan_res;
    diagnostics plan_last;

    void start_connect() {
        if (ph != phase::idle) throw_in_progress();
        if (!host_plan::needed(cfg)) return start_connect_one();
        plan_cfg = cfg;
        plan = std::make_unique<host_plan>(cfg);
        plan_last.clear();
        next_host();
    }
    // Starts the next host's connect; without one left, ends with the plan's error.
    void next_host() {
        config one;
        while (plan->next(one)) {
            cfg = one;
            start_connect_one();
            if (ph != phase::idle) {
                pstep = plan_step::connecting;
                return;
            }
            plan_last = diag;
            plan->failed(diag);
        }
        diag = plan->exhausted(plan_last);
        end_plan();
        cfg = plan_cfg;
    }
    void end_plan() {
        plan.reset();
        pstep = plan_step::none;
        plan_res = results();
    }
    // This host will not do: the next one.
    void host_failed(bool not_synced) {
        if (not_synced) {
            plan->not_synced(plan_res);
        } else {
            plan_last = diag;
            plan->failed(diag);
        }
        channel::close();
        next_host();
    }
    bool plan_query(plan_step step, const std::string& sql) {
        pstep = step;
        begin([&] { return sess.start_query(sql, &plan_res); });
        return ph != phase::idle || !diag;
    }
    poll_result poll_plan() {
        for (;;) {
            poll_result r = poll();
            if (!plan || !r.done()) return r;
            const plan_step step = pstep;
            if (diag) {  // this step failed: the next host
                host_failed(false);
                if (!plan) return r;
                continue;
            }
            if (step == plan_step::connecting && plan->galera_query()) {
                if (!plan_query(plan_step::galera, plan->galera_query())) host_failed(false);
                if (!plan) return r;
                continue;
            }
            if (step == plan_step::galera && !host_plan::galera_ok(plan_res)) {
                host_failed(true);
                if (!plan) return r;
                continue;
            }
            if (step != plan_step::setup && !plan->session_setup().empty()) {
                if (!plan_query(plan_step::setup, plan->session_setup())) host_failed(false);
                if (!plan) return r;
                continue;
            }
            plan->succeeded();  // connected (cfg names the host it is connected to)
            end_plan();
            return r;
        }
    }

    void start_connect_one() {
        if (ph != phase::idle) throw_in_progress();
        channel::close();
        diag.clear();
        waiting = false;
        connect_deadline = after(cfg.connect_timeout);
        std::string msg;
        sock.configure(cfg);
        bool in_progress = false;
        std::error_code ec = cfg.unix_socket.empty()
                                 ? sock.start_connect_tcp(cfg.host_address.empty() ? cfg.host : cfg.host_address,
                                                          cfg.port, in_progress, msg)
                                 : sock.start_connect_unix(cfg.unix_socket, in_progress, msg);
        if (ec) {
            connect_failed(ec, std::move(msg));
            connect_deadline = clock::time_point::max();
            return;
        }
        ph = phase::connecting;  // poll() finishes the TCP connect, then the handshake
    }
};

}  // namespace detail

nb_connection::nb_connection() : impl_(std::make_unique<detail::nb_impl>()) {}
nb_connection::nb_connection(const config& cfg) : nb_connection() { impl_->cfg = cfg; }
nb_connection::~nb_connection() {
    if (impl_) impl_->channel::close();
}
nb_connection::nb_connection(nb_connection&&) noexcept = default;
nb_connection& nb_connection::operator=(nb_connection&& o) noexcept {
    if (this != &o) {
        if (impl_) impl_->channel::close();
        impl_ = std::move(o.impl_);
    }
    return *this;
}

void nb_connection::set_config(const config& cfg) {
    if (impl_->ph != detail::nb_impl::phase::idle) detail::nb_impl::throw_in_progress();
    impl_->cfg = cfg;
}

void nb_connection::start_connect() { impl_->start_connect(); }
void nb_connection::start_query(std::string_view sql) {
    impl_->begin([&] { return impl_->sess.start_query(sql, &impl_->res); });
}
void nb_connection::start_query_args(std::string_view sql, std::span<const sql_arg> args) {
    impl_->begin([&] { return impl_->sess.start_query(sql, args, &impl_->res); });
}
void nb_connection::start_stream(std::string_view sql) {
    impl_->begin([&] { return impl_->sess.start_query(sql, nullptr); });
}
void nb_connection::start_stream_args(std::string_view sql, std::span<const sql_arg> args) {
    impl_->begin([&] { return impl_->sess.start_query(sql, args, nullptr); });
}
void nb_connection::start_read_rows() {
    impl_->begin([&] { return impl_->sess.start_read_rows(); });
}
void nb_connection::start_next_result() {
    impl_->begin([&] { return impl_->sess.start_next_result(); });
}
void nb_connection::start_discard() {
    impl_->begin([&] { return impl_->sess.start_discard(); });
}
void nb_connection::start_ping() {
    impl_->begin([&] { return impl_->sess.start_ping(); });
}
void nb_connection::start_select_db(std::string_view database) {
    impl_->begin([&] { return impl_->sess.start_init_db(database); });
}
void nb_connection::start_set_character_set(std::string_view charset, std::string_view collation) {
    impl_->begin([&] { return impl_->sess.start_set_charset(charset, collation); });
}
void nb_connection::start_reset_connection() {
    impl_->begin([&] { return impl_->sess.start_reset_connection(); });
}
void nb_connection::start_execute_args(std::string_view sql, std::span<const sql_arg> args) {
    impl_->begin([&] { return impl_->sess.start_execute(sql, args, &impl_->res); });
}
void nb_connection::start_stream_execute_args(std::string_view sql, std::span<const sql_arg> args) {
    impl_->begin([&] { return impl_->sess.start_execute(sql, args, nullptr); });
}
void nb_connection::start_prepare(std::string_view sql) {
    impl_->begin([&] { return impl_->sess.start_prepare(sql, &impl_->prepared); });
}
const statement& nb_connection::prepared() const noexcept { return impl_->prepared; }
void nb_connection::start_execute_args(const statement& st, std::span<const sql_arg> args) {
    impl_->begin([&] { return impl_->sess.start_execute(st, args, &impl_->res); });
}
void nb_connection::start_close_statement(const statement& st) {
    impl_->begin([&] { return impl_->sess.start_close_statement(st); });
}
void nb_connection::start_execute_many(std::string_view sql, std::span<const sql_arg> values, std::size_t width) {
    impl_->begin([&] { return impl_->sess.start_execute_many(sql, values, width, &impl_->res); });
}
void nb_connection::start_pipeline(pipeline& p) {
    impl_->begin([&] { return impl_->sess.start_pipeline(p); });
}

poll_result nb_connection::poll() { return impl_->poll_plan(); }
void nb_connection::expect_input() noexcept { impl_->read_first = true; }
int nb_connection::fileno() const noexcept {
    return impl_->cph == detail::nb_impl::cancel_phase::killing ? impl_->killer.fileno() : impl_->sock.fd();
}
void nb_connection::cancel() noexcept { impl_->cancel(); }
bool nb_connection::cancelling() const noexcept { return impl_->cph != detail::nb_impl::cancel_phase::none; }
bool nb_connection::busy() const noexcept { return impl_->ph != detail::nb_impl::phase::idle; }
bool nb_connection::ok() const noexcept { return !impl_->diag; }
const diagnostics& nb_connection::error() const noexcept { return impl_->diag; }
void nb_connection::check() const {
    if (impl_->diag) throw ambisql::error(impl_->diag);
}
const results& nb_connection::result() const noexcept { return impl_->res; }
std::span<const column> nb_connection::stream_columns() const noexcept {
    return impl_->sess.stream_header().columns();
}
std::size_t nb_connection::batch_size() const noexcept { return impl_->sess.batch_size(); }
row_view nb_connection::batch_row(std::size_t i) const noexcept { return impl_->sess.batch_row(i); }
bool nb_connection::rows_pending() const noexcept {
    return impl_->sess.stream() == proto::session::stream_state::rows;
}
bool nb_connection::more_results() const noexcept {
    return impl_->sess.stream() == proto::session::stream_state::set_done &&
           (impl_->sess.status() & server_status::more_results_exist);
}
const ok_info& nb_connection::stream_ok() const noexcept { return impl_->sess.stream_header().ok(); }
void nb_connection::close() noexcept {
    impl_->killer.finish();
    impl_->cph = detail::nb_impl::cancel_phase::none;
    if (impl_->ph != detail::nb_impl::phase::idle) {
        // The operation ends here, unfinished: poll() says done, with this error.
        diagnostics& d = impl_->diag;
        d.clear();
        d.kind = error_kind::client;
        d.code = errc::connection_closed;
        d.message = "the connection was closed while an operation was running";
        d.connection_usable = false;
    }
    impl_->ph = detail::nb_impl::phase::idle;
    impl_->channel::close();
}
void nb_connection::interrupt_io() noexcept { impl_->sock.interrupt(); }
bool nb_connection::is_open() const noexcept { return impl_->sess.connected() && impl_->sock.is_open(); }
std::uint32_t nb_connection::connection_id() const noexcept { return impl_->sess.connection_id(); }
const std::string& nb_connection::server_version() const noexcept { return impl_->sess.server_version(); }
bool nb_connection::tls_active() const noexcept { return impl_->sess.tls_active(); }
bool nb_connection::compressed() const noexcept { return impl_->sess.compressed(); }
escaping nb_connection::escaping_rules() const noexcept { return impl_->sess.escaping_rules(); }
std::uint16_t nb_connection::server_status() const noexcept { return impl_->sess.status(); }
bool nb_connection::in_transaction() const noexcept { return impl_->sess.may_be_in_transaction(); }
bool nb_connection::result_pending() const noexcept { return impl_->sess.in_progress() || impl_->sess.result_pending(); }
bool nb_connection::session_changed() const noexcept { return impl_->sess.state_changed(); }
void nb_connection::clear_session_changed() noexcept { impl_->sess.clear_state_changed(); }
const std::string& nb_connection::character_set() const noexcept { return impl_->sess.charset(); }
const config& nb_connection::settings() const noexcept { return impl_->cfg; }
bool nb_connection::bulk_rows() const noexcept { return impl_->sess.bulk_rows(); }

}  // namespace ambisql
