// ambisql._ambisql: the Python module's C++ half. One class, _Conn, over the core's
// non-blocking connection (nb_connection): every mode of the Python API drives the same
// operations. Blocking calls wait in poll(2) with the GIL released; a wait callback
// (set_wait_callback, gevent, eventlet) or an event loop calls poll() itself. No protocol
// logic here: operations, escaping and decoding are the core's; this file converts values
// and maps errors to the PEP 249 classes (chosen in ambisql/err.py).
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "ambisql/error.hpp"
#include "ambisql/nb_connection.hpp"
#include "ambisql/retry.hpp"
#include "binding.hpp"
#include "values.hpp"

namespace py = pybind11;
using namespace ambisql;

namespace {

// ambisql.err._from_driver(errno, message, kind) -> an exception. A plain reference, never
// released: a static py::object would be destroyed after the interpreter is gone.
PyObject* error_factory = nullptr;

// The PEP 249 class family, client error number and text for a failure: server errors by
// their code (err.py maps them as PyMySQL does); client failures as the MySQL client
// numbers them, with PyMySQL's texts.
struct mapped {
    int errno_;
    std::string message;
    const char* kind;  // "server", "operational", "programming", "interface"
};

mapped map_error(const diagnostics& d, bool connecting, const std::string& host) {
    if ((d.kind == error_kind::server || d.kind == error_kind::auth) && d.server_code != 0)
        return {d.server_code, d.message, "server"};
    const std::error_code ec = d.code;
    auto is = [&](errc e) { return ec == make_error_code(e); };
    if (is(errc::operation_in_progress))
        return {2014, "Commands out of sync; you can't run this command now (" + d.message + ")", "programming"};
    if (is(errc::placeholder_mismatch) || is(errc::bad_value) || is(errc::charset_unknown) || is(errc::bad_text) ||
        is(errc::stale_handle) ||
        is(errc::result_pending) || is(errc::value_type_mismatch) || is(errc::value_out_of_range) ||
        is(errc::bad_url) || is(errc::bad_config))
        return {0, d.message, "programming"};
    if (is(errc::cancelled) && d.connection_usable) return {1317, "Query execution was interrupted", "operational"};
    if (is(errc::local_infile_refused)) return {2068, d.message, "operational"};
    if (connecting) {
        if (d.kind == error_kind::tls) return {2026, "SSL connection error: " + d.message, "operational"};
        return {2003, "Can't connect to MySQL server on '" + host + "' (" + d.message + ")", "operational"};
    }
    if (is(errc::connection_broken) || is(errc::not_connected))
        return {2006, "MySQL server has gone away (" + d.message + ")", "operational"};
    if (is(errc::protocol_error) || is(errc::sequence_mismatch) || is(errc::packet_too_large))
        return {2027, "Malformed packet (" + d.message + ")", "operational"};
    return {2013, "Lost connection to MySQL server during query (" + d.message + ")", "operational"};
}

void set_mapped(const mapped& m) {
    py::object exc = py::reinterpret_borrow<py::object>(error_factory)(m.errno_, m.message, m.kind);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
}

[[noreturn]] void raise_mapped(const mapped& m) {
    set_mapped(m);
    throw py::error_already_set();
}
}  // namespace

void pyconv::set_escape_error(std::error_code ec) {
    try {
        set_mapped({0, "cannot interpolate text: " + ec.message(), "programming"});
    } catch (py::error_already_set& e) {
        e.restore();
    }
}

namespace {

enum poll_state { poll_ok = 0, poll_read = 1, poll_write = 2 };

// How long a cancelled command's KILL and drain may take before the connection is closed
// instead (a server, or a path to it, that does not answer).
constexpr std::chrono::seconds abort_deadline{5};

// connect()'s options, each checked for its type and range: a clear ProgrammingError
// naming the option (as for an unknown ssl_mode), never pybind11's cast error or a
// float-to-integer conversion out of range.
[[noreturn]] void bad_option(const char* key, const char* what) {
    raise_mapped({0, std::string("connect(): ") + key + " " + what, "programming"});
}
bool has(const py::dict& o, const char* key) { return o.contains(key) && !o[key].is_none(); }
template <class T>
T option(const py::dict& o, const char* key, const char* what) {
    try {
        return o[key].cast<T>();
    } catch (const py::cast_error&) {
        bad_option(key, what);
    }
}
std::string text_option(const py::dict& o, const char* key) { return option<std::string>(o, key, "must be a str"); }
bool flag_option(const py::dict& o, const char* key) { return option<bool>(o, key, "must be True or False"); }
std::chrono::milliseconds ms_of(const py::dict& o, const char* key, std::chrono::milliseconds def) {
    if (!has(o, key)) return def;
    const double s = option<double>(o, key, "must be a number of seconds");
    if (!(s >= 0 && s <= 1e9)) bad_option(key, "must be a number of seconds from 0 to 1e9");  // (NaN too)
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

config config_of(const py::dict& o) {
    // The Python API's defaults where they differ from the C++ API's: multi-statements
    // off, as MySQLdb and PyMySQL have them (client_flag asks for them). Then the URL,
    // then keyword arguments: each later one wins where it says something.
    config c;
    c.multi_statements = false;
    if (has(o, "url")) c = config::from_url(text_option(o, "url"), std::move(c));
    auto str = [&](const char* key, std::string& out) {
        if (has(o, key)) out = text_option(o, key);
    };
    str("host", c.host);
    str("user", c.user);
    str("password", c.password);
    str("database", c.database);
    str("unix_socket", c.unix_socket);
    str("charset", c.charset);
    str("ssl_ca", c.ssl_ca);
    str("ssl_capath", c.ssl_capath);
    str("ssl_ca_pem", c.ssl_ca_pem);
    str("ssl_cert", c.ssl_cert);
    str("ssl_key", c.ssl_key);
    str("bind_address", c.bind_address);
    if (has(o, "port")) {
        const long long port = option<long long>(o, "port", "must be an int");
        if (port < 0 || port > 65535) bad_option("port", "must be from 0 to 65535");
        c.port = static_cast<std::uint16_t>(port);
    }
    if (has(o, "ssl_mode")) {
        // Parsed the one way the URL is. Never weaker than the URL asked: the stronger of
        // the two, and "disabled" only where the URL does not require TLS.
        const ssl_mode m = config::from_url("mysql://x@h/?ssl-mode=" + text_option(o, "ssl_mode")).ssl;
        if (m == ssl_mode::disabled && c.ssl >= ssl_mode::required)
            bad_option("ssl_mode", "disabled conflicts with the URL's ssl-mode, which requires TLS");
        c.ssl = m == ssl_mode::disabled ? m : std::max(c.ssl, m);
    }
    if (has(o, "tls_min_version")) {
        const int v = option<int>(o, "tls_min_version", "must be 0x0303 or 0x0304");
        if (v != 0x0303 && v != 0x0304) bad_option("tls_min_version", "must be 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3)");
        c.tls_min_version = static_cast<std::uint16_t>(v);
    }
    c.connect_timeout = ms_of(o, "connect_timeout", c.connect_timeout);
    c.read_timeout = ms_of(o, "read_timeout", c.read_timeout);
    c.write_timeout = ms_of(o, "write_timeout", c.write_timeout);
    if (o.contains("found_rows")) c.found_rows = flag_option(o, "found_rows");
    if (o.contains("multi_statements")) c.multi_statements = flag_option(o, "multi_statements");
    if (o.contains("compress")) c.compress = flag_option(o, "compress");
    if (o.contains("get_server_public_key")) c.get_server_public_key = flag_option(o, "get_server_public_key");
    if (o.contains("local_infile_allow"))
        c.local_infile_allow = option<std::vector<std::string>>(o, "local_infile_allow", "must be a list of str");
    // Several hosts ("h1:3306,h2,h3:3307") and the Galera settings, read the one way the URL is.
    if (has(o, "hosts")) {
        config h = config::from_url("mysql://x@" + text_option(o, "hosts") + "/");
        if (h.hosts.empty()) {
            c.host = h.host;
            c.port = h.port;
        } else {
            c.hosts = h.hosts;
        }
    }
    if (has(o, "host_mode"))
        c.hosts_mode = config::from_url("mysql://x@h/?host-mode=" + text_option(o, "host_mode")).hosts_mode;
    if (o.contains("galera_check")) c.galera_check = flag_option(o, "galera_check");
    if (has(o, "wsrep_sync_wait"))
        c.wsrep_sync_wait = config::from_url("mysql://x@h/?wsrep-sync-wait=" +
                                             std::to_string(option<int>(o, "wsrep_sync_wait", "must be an int")))
                                .wsrep_sync_wait;
    c.host_backoff = ms_of(o, "host_backoff", c.host_backoff);
    c.connect_attributes.emplace_back("_client_language", "python");
    return c;
}

class conn {
public:
    conn() = default;

    void start_connect(const py::dict& opts) {
        not_waited_on();
        cfg_ = config_of(opts);
        raw_text_ = opts.contains("use_unicode") && !flag_option(opts, "use_unicode");
        nb_.set_config(cfg_);
        connecting_ = true;
        run([&] { nb_.start_connect(); });
    }

    void start_query(const std::string& sql, const py::object& args) {
        not_waited_on();
        if (args.is_none() && codec_now().utf8) {
            run([&] { nb_.start_query(sql); });
        } else {
            std::string text = query_text(sql, args);
            run([&] { nb_.start_query(text); });
        }
        buffered_ = true;
    }
    void start_stream(const std::string& sql, const py::object& args) {
        not_waited_on();
        if (args.is_none() && codec_now().utf8) return run([&] { nb_.start_stream(sql); });
        std::string text = query_text(sql, args);
        run([&] { nb_.start_stream(text); });
    }
    // Prepared statements (binary protocol) through the core's statement cache.
    void start_execute(const std::string& sql, const py::object& args) {
        not_waited_on();
        std::string q;
        if (!pyconv::qmark_from_pyformat(q, sql)) throw py::error_already_set();
        pyconv::bound_args b(&codec_now());
        add_all(b, args);
        run([&] { nb_.start_execute_args(q, b.args()); });
        buffered_ = true;
    }
    // executemany: the rows of `seq` through the core's bulk path (the values are kept
    // until the operation is done).
    void start_execute_many(const std::string& sql, const py::object& seq) {
        not_waited_on();
        std::string q;
        if (!pyconv::qmark_from_pyformat(q, sql)) throw py::error_already_set();
        auto b = std::make_unique<pyconv::bound_args>(&codec_now());
        std::size_t width = 0, rows = 0;
        for (py::handle row : seq) {
            const std::size_t before = b->size();
            add_all(*b, py::reinterpret_borrow<py::object>(row));
            const std::size_t w = b->size() - before;
            if (rows++ == 0) width = w;
            if (w != width) raise_mapped({0, "executemany: rows of different lengths", "programming"});
        }
        if (width == 0) raise_mapped({0, "executemany: no parameters to bind", "programming"});
        many_ = std::move(b);
        run([&] { nb_.start_execute_many(q, many_->args(), width); });
    }
    void start_read_rows() { run([&] { nb_.start_read_rows(); }); }
    void start_next_result() { run([&] { nb_.start_next_result(); }); }
    void start_discard() { run([&] { nb_.start_discard(); }); }
    void start_ping() { run([&] { nb_.start_ping(); }); }
    void start_reset() { run([&] { nb_.start_reset_connection(); }); }
    void start_select_db(const std::string& db) { run([&] { nb_.start_select_db(db); }); }
    void start_set_charset(const std::string& cs, const std::string& collation) {
        run([&] { nb_.start_set_character_set(cs, collation); });
    }

    // One step without blocking: POLL_OK (done; raises if it failed), POLL_READ, POLL_WRITE.
    int poll() {
        not_waited_on();
        poll_result w = nb_.poll();
        deadline_ = w.deadline();
        if (!w.done()) return (w.events() & wait_for::read) ? poll_read : poll_write;
        finish();
        return poll_ok;
    }
    // Seconds until the last poll()'s deadline (a timeout), None for none: how long a
    // wait callback may wait before polling again.
    py::object timeout() const {
        if (deadline_ == clock::time_point::max()) return py::none();
        const double s = std::chrono::duration<double>(deadline_ - clock::now()).count();
        return py::float_(s < 0 ? 0.0 : s);
    }
    // Drives the operation to its end, blocking in poll(2) with the GIL released. A signal
    // (KeyboardInterrupt) cancels the command on the server (KILL QUERY, its answer
    // drained), then raises; a second one, or a drain that takes longer than
    // abort_deadline, closes the connection at once.
    void wait() {
        not_waited_on();
        bool interrupted = false;
        clock::time_point hard = clock::time_point::max();
        {
            blocking_wait bw(*this);
            for (;;) {
                if (bw.closed()) break;
                if (interrupted && clock::now() >= hard) {
                    nb_.close();
                    break;
                }
                poll_result w = nb_.poll();
                if (w.done()) break;
                int ms = -1;
                const clock::time_point until = std::min(w.deadline(), hard);
                if (until != clock::time_point::max()) {
                    auto left = std::chrono::ceil<std::chrono::milliseconds>(until - clock::now()).count();
                    ms = left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
                }
                if ((w.events() & wait_for::read) && nb_.bulk_rows()) {
                    // A large result: while the server sends more, turn the rows already
                    // here into Python tuples (the work overlaps the transfer, which
                    // otherwise comes first); with too few for that, let the server's
                    // chunks pile up and read them at once (read_coalescing).
                    if (buffered_ && convert_some()) continue;
                    if (cfg_.read_coalescing.count() > 0) {
                        bw.nap(std::chrono::microseconds(cfg_.read_coalescing));
                        continue;
                    }
                }
                pollfd p{nb_.fileno(), static_cast<short>((w.events() & wait_for::read) ? POLLIN : POLLOUT), 0};
                if (bw.block(p, ms) < 0 && errno == EINTR && !bw.closing() && bw.signalled()) {
                    if (interrupted) {  // again while the KILL is on its way: no more waiting
                        nb_.close();
                        break;
                    }
                    interrupted = true;  // the exception stays set; the command is killed first
                    hard = clock::now() + abort_deadline;
                    nb_.cancel();
                }
            }
        }
        if (interrupted) throw py::error_already_set();
        finish();
    }
    // Cancels the running operation and drives the cancellation to its end without a
    // callback (after a wait callback raised: a killed greenlet, a timeout; an exception
    // in a coroutine that cannot await any more). A signal meanwhile, or a server that
    // takes longer than abort_deadline, closes the connection instead (the signal's
    // exception raised).
    void abort() {
        not_waited_on();
        if (!nb_.busy()) return;
        nb_.cancel();
        bool signalled = false;
        {
            blocking_wait bw(*this);
            const clock::time_point hard = clock::now() + abort_deadline;
            for (;;) {
                if (bw.closed()) break;
                poll_result w = nb_.poll();
                if (w.done()) break;
                const auto left = std::chrono::ceil<std::chrono::milliseconds>(hard - clock::now()).count();
                pollfd p{nb_.fileno(), static_cast<short>((w.events() & wait_for::read) ? POLLIN : POLLOUT), 0};
                const int r = left <= 0 ? 0 : bw.block(p, static_cast<int>(left));
                if (r == 0) {  // the server does not answer: give up on it
                    nb_.close();
                    break;
                }
                if (r < 0 && errno == EINTR && !bw.closing() && bw.signalled()) {
                    nb_.close();
                    signalled = true;
                    break;
                }
            }
        }
        if (signalled) throw py::error_already_set();
    }
    void cancel() {
        not_waited_on();
        nb_.cancel();
    }
    // Closes the connection. Should another thread be waiting on it in wait() or abort()
    // (sharing a connection between threads is the caller's error, threadsafety 1, but
    // closing it from another thread is how some stop a query that runs too long), that
    // thread is woken (the socket shut down under it), closes it and fails with a lost
    // connection; the socket's number is not freed while it may still be waiting on it.
    void close() {
        for (;;) {
            if (!in_wait_) return nb_.close();  // (the GIL held: nobody else is in nb_)
            if (waiter_ == std::this_thread::get_id()) {
                // Called by the waiting thread itself, from a signal handler or a finalizer
                // that ran while it held the GIL in its wait, which it does only holding m_.
                close_pending_ = true;
                return;
            }
            py::gil_scoped_release nogil;
            std::lock_guard lk(m_);
            if (waiting_) {
                close_pending_ = true;
                if (nb_.fileno() >= 0) ::shutdown(nb_.fileno(), SHUT_RDWR);
                return;
            }
            // not yet, or no longer, in its wait: try again with the GIL
        }
    }

    // The buffered result: per resultset (description, rows, affected_rows, insert_id,
    // warnings); rows a tuple of tuples, as PyMySQL's and MySQLdb's buffered cursors give.
    py::list results() {
        not_waited_on();
        py::list out;
        const pyconv::text_codec& codec = codec_now();
        std::vector<py::object> pre = std::move(pre_);  // rows made while the result came in
        pre_.clear();
        std::size_t index = 0;
        for (const resultset& set : nb_.result()) {
            py::object desc = py::reinterpret_steal<py::object>(descriptions_.get(set.columns()));
            if (!desc) throw py::error_already_set();
            py::object rows;
            const std::size_t i = index++;
            if (set.has_rows() && i < pre.size() && pre[i]) {
                py::object made = std::move(pre[i]);  // a list of the rows converted so far
                const auto have = static_cast<std::size_t>(PyList_GET_SIZE(made.ptr()));
                PyObject* all = PyTuple_New(static_cast<Py_ssize_t>(set.size()));
                if (!all) throw py::error_already_set();
                rows = py::reinterpret_steal<py::object>(all);
                for (std::size_t k = 0; k < have; ++k)
                    PyTuple_SET_ITEM(all, static_cast<Py_ssize_t>(k), Py_NewRef(PyList_GET_ITEM(made.ptr(), k)));
                for (std::size_t k = have; k < set.size(); ++k) {
                    PyObject* t = pyconv::row_to_tuple(set[k], codec);
                    if (!t) throw py::error_already_set();
                    PyTuple_SET_ITEM(all, static_cast<Py_ssize_t>(k), t);
                }
            } else if (set.has_rows()) {
                PyObject* all = PyTuple_New(static_cast<Py_ssize_t>(set.size()));
                if (!all) throw py::error_already_set();
                rows = py::reinterpret_steal<py::object>(all);
                Py_ssize_t k = 0;
                for (row_view r : set) {
                    PyObject* t = pyconv::row_to_tuple(r, codec);
                    if (!t) throw py::error_already_set();
                    PyTuple_SET_ITEM(all, k++, t);
                }
            } else {
                rows = py::none();
            }
            out.append(py::make_tuple(desc, rows, set.affected_rows(), set.last_insert_id(), set.warning_count()));
            last_ = {set.has_rows() ? set.size() : set.affected_rows(), set.last_insert_id(), set.warning_count()};
        }
        return out;
    }
    // The last statement's (affected rows, insert id, warnings), as MySQLdb's
    // connection-level calls give them (affected rows of a result: its row count).
    py::tuple last_ok() const { return py::make_tuple(last_.affected, last_.insert_id, last_.warnings); }
    // Streaming: the current batch of rows as tuples, the header, the end's OK.
    py::list batch() {
        not_waited_on();
        const pyconv::text_codec& codec = codec_now();
        py::list out(nb_.batch_size());
        for (std::size_t i = 0; i < nb_.batch_size(); ++i) {
            PyObject* t = pyconv::row_to_tuple(nb_.batch_row(i), codec);
            if (!t) throw py::error_already_set();
            PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), t);
        }
        return out;
    }
    py::object stream_description() {
        not_waited_on();
        PyObject* d = descriptions_.get(nb_.stream_columns());
        if (!d) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(d);
    }
    py::tuple stream_ok() {
        not_waited_on();
        const ok_info& ok = nb_.stream_ok();
        last_ = {ok.affected_rows, ok.last_insert_id, ok.warnings};
        return py::make_tuple(ok.affected_rows, ok.last_insert_id, ok.warnings);
    }

    int fileno() const {
        not_waited_on();
        return nb_.fileno();
    }
    bool timed() const { return deadline_ != clock::time_point::max(); }  // the last poll()'s
    // (busy and open while another thread waits on it)
    bool busy() const { return in_wait_ || nb_.busy(); }
    // An unbuffered result is not read to its end: no other command can start.
    bool stream_pending() const { return !in_wait_ && (nb_.rows_pending() || nb_.more_results()); }
    bool is_open() const { return in_wait_ || nb_.is_open(); }
    bool rows_pending() const {
        not_waited_on();
        return nb_.rows_pending();
    }
    bool more_results() const {
        not_waited_on();
        return nb_.more_results();
    }
    std::uint32_t connection_id() const {
        not_waited_on();
        return nb_.connection_id();
    }
    std::string server_version() const {
        not_waited_on();
        return nb_.server_version();
    }
    std::uint16_t server_status() const {
        not_waited_on();
        return nb_.server_status();
    }
    std::string character_set() const {
        not_waited_on();
        return nb_.character_set();
    }
    bool tls_active() const {
        not_waited_on();
        return nb_.tls_active();
    }
    // Raises (2014, as for two operations at once) while another thread waits on this
    // connection in wait() or abort() with the GIL released: only close() may touch it then.
    void not_waited_on() const {
        if (in_wait_)
            raise_mapped({2014,
                          "Commands out of sync; you can't run this command now (another thread is waiting on this "
                          "connection)",
                          "programming"});
    }
    std::string host_info() const {
        return cfg_.unix_socket.empty() ? cfg_.host + " via TCP/IP" : "Localhost via UNIX socket";
    }
    // A literal for `value` on this connection (cursor.mogrify, Connection.escape).
    std::string literal(const py::object& value) {
        not_waited_on();
        std::string out;
        if (!pyconv::append_py_literal(out, value.ptr(), text_rules())) throw py::error_already_set();
        return out;
    }
    std::string format(const std::string& sql, const py::object& args) {
        not_waited_on();
        std::string out;
        if (!pyconv::format_pyformat(out, sql, args.ptr(), text_rules())) throw py::error_already_set();
        return out;
    }

private:
    // During a buffered query's wait (the GIL released): converts the complete rows of the
    // resultset coming in that are not converted yet, when there are enough to be worth
    // it. False: nothing done.
    bool convert_some() {
        const ambisql::results& r = nb_.result();
        if (r.size() == 0) return false;
        const std::size_t i = r.size() - 1;
        const resultset& set = r[i];
        const std::size_t have = i < pre_.size() && pre_[i] ? pre_done_ : 0;
        if (set.size() < have + 512) return false;
        py::gil_scoped_acquire gil;
        if (pre_.size() <= i) pre_.resize(i + 1);
        if (!pre_[i]) {
            pre_[i] = py::reinterpret_steal<py::object>(PyList_New(0));
            pre_done_ = 0;
            if (!pre_[i]) {
                PyErr_Clear();
                buffered_ = false;  // results() converts everything, and reports any failure
                return false;
            }
        }
        const pyconv::text_codec& codec = codec_now();
        for (std::size_t k = pre_done_; k < set.size(); ++k) {
            PyObject* t = pyconv::row_to_tuple(set[k], codec);
            if (!t || PyList_Append(pre_[i].ptr(), t) != 0) {
                Py_XDECREF(t);
                PyErr_Clear();
                buffered_ = false;
                return false;
            }
            Py_DECREF(t);
            pre_done_ = k + 1;
        }
        return true;
    }

    template <class Start>
    void run(Start&& start) {
        not_waited_on();
        buffered_ = false;
        if (!pre_.empty()) {
            py::gil_scoped_acquire gil;  // (held already: run() is called from Python)
            pre_.clear();
        }
        try {
            start();
        } catch (const ambisql::error& e) {  // refused at once (another operation is running)
            raise_mapped(map_error(e.diag(), false, cfg_.host));
        }
    }
    void finish() {
        many_.reset();
        buffered_ = false;
        const bool was_connecting = connecting_;
        connecting_ = false;
        if (!nb_.ok()) raise_mapped(map_error(nb_.error(), was_connecting, cfg_.host));
    }
    // The core's escaping rules for text as this module escapes it: str values are escaped
    // as UTF-8, and the whole statement is then transcoded to the connection's character
    // set by a codec, character by character (no byte of a character can turn into an
    // escape or a quote). Unknown character set: refused, as the core refuses.
    escaping text_rules() const {
        escaping e = nb_.escaping_rules();
        e.mb = multibyte::none;
        return e;
    }
    // The SQL with `args` interpolated, in the connection's character set.
    std::string query_text(const std::string& sql, const py::object& args) {
        std::string text;
        if (!pyconv::format_pyformat(text, sql, args.ptr(), text_rules())) throw py::error_already_set();
        if (!pyconv::transcode(text, codec_now())) throw py::error_already_set();
        return text;
    }
    static void add_all(pyconv::bound_args& b, const py::object& args) {
        if (args.is_none()) return;
        if (PyUnicode_Check(args.ptr()) || PyBytes_Check(args.ptr()) || !PySequence_Check(args.ptr())) {
            if (!b.add(args.ptr())) throw py::error_already_set();
            return;
        }
        for (py::handle v : args)
            if (!b.add(v.ptr())) throw py::error_already_set();
    }
    const pyconv::text_codec& codec_now() {
        const std::string& cs = nb_.character_set();
        if (cs != codec_charset_) {
            codec_charset_ = cs;
            codec_ = pyconv::text_codec::for_charset(cs);
        }
        codec_.raw = raw_text_;
        return codec_;
    }

    // A blocking wait's scope (wait(), abort()): the GIL released, m_ held but while the
    // thread sleeps in poll(2) or a nap. in_wait_ (changed with the GIL held) tells other
    // threads to keep out; waiting_ (under m_) tells close() that this thread will see its
    // close_pending_ when it wakes.
    class blocking_wait {
    public:
        explicit blocking_wait(conn& c) : c_(c) {
            c_.in_wait_ = true;
            c_.waiter_ = std::this_thread::get_id();
            nogil_.emplace();
            lk_ = std::unique_lock(c_.m_);
            c_.waiting_ = true;
        }
        ~blocking_wait() {
            c_.waiting_ = false;
            lk_.unlock();
            nogil_.reset();
            c_.in_wait_ = false;
        }
        blocking_wait(const blocking_wait&) = delete;
        blocking_wait& operator=(const blocking_wait&) = delete;
        // poll(2) with m_ released (errno kept).
        int block(pollfd& p, int ms) {
            lk_.unlock();
            const int r = ::poll(&p, 1, ms);
            const int e = errno;
            lk_.lock();
            errno = e;
            return r;
        }
        void nap(std::chrono::microseconds us) {
            lk_.unlock();
            timespec t{0, static_cast<long>(us.count()) * 1000};
            ::nanosleep(&t, nullptr);
            lk_.lock();
        }
        bool closing() const { return c_.close_pending_; }
        // A signal's Python handler raised (KeyboardInterrupt): its exception is set.
        // An earlier one's exception, if set, is set aside while the handlers run, and
        // given up for the newer one.
        bool signalled() {
            py::gil_scoped_acquire gil;  // (m_ held, as in a wait: close() takes m_ without the GIL)
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            if (PyErr_CheckSignals() != 0) {
                Py_XDECREF(type);
                Py_XDECREF(value);
                Py_XDECREF(tb);
                return true;
            }
            PyErr_Restore(type, value, tb);
            return false;
        }
        // Another thread closed the connection meanwhile: close it now (its operation ends
        // with that error); true then.
        bool closed() {
            if (!c_.close_pending_) return false;
            c_.close_pending_ = false;
            c_.nb_.close();
            return true;
        }

    private:
        conn& c_;
        std::optional<py::gil_scoped_release> nogil_;
        std::unique_lock<std::mutex> lk_;
    };

    nb_connection nb_;
    bool in_wait_ = false;  // a thread waits in wait() or abort() (the GIL held to change it)
    std::thread::id waiter_;  // which (valid while in_wait_)
    std::mutex m_;          // what that thread holds but while it sleeps
    bool waiting_ = false, close_pending_ = false;  // (under m_)
    config cfg_;
    clock::time_point deadline_ = clock::time_point::max();
    bool connecting_ = false;
    std::unique_ptr<pyconv::bound_args> many_;  // execute_many's values, until it is done
    // A buffered query's rows made into tuples while the rest was still coming in
    // (convert_some()), per resultset; pre_done_ counts the last one's.
    bool buffered_ = false;
    std::vector<py::object> pre_;
    std::size_t pre_done_ = 0;
    std::string codec_charset_ = "utf8mb4";
    pyconv::text_codec codec_;
    bool raw_text_ = false;  // use_unicode=False: text values as bytes
    pyconv::description_cache descriptions_;
    struct {
        std::uint64_t affected = 0, insert_id = 0;
        unsigned warnings = 0;
    } last_;
};

// The C++ exception being handled as the Python exception it maps to (set); nullptr.
PyObject* translate_current() noexcept {
    try {
        throw;
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const ambisql::error& e) {
        try {
            set_mapped(map_error(e.diag(), false, ""));
        } catch (py::error_already_set& e2) {
            e2.restore();
        }
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

// The methods every query calls (start_query/stream/execute, poll, wait, results, fileno,
// timeout) as plain METH_FASTCALL methods: pybind11's dispatch (argument loaders, type
// lookups by typeid hash) cost more per call than the work itself for poll() or fileno().
// CPython's method descriptor has checked that `self` is a _Conn already.
conn* conn_of(PyObject* self) {
    auto vh = reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder();
    if (!vh.holder_constructed()) {
        PyErr_SetString(PyExc_TypeError, "_Conn.__init__() was not called");
        return nullptr;
    }
    return vh.value_ptr<conn>();
}

// (Not instrumented by AddressSanitizer: see fast_watch_read; what it calls is.)
template <PyObject* (*Fn)(conn&, PyObject* const*, Py_ssize_t)>
__attribute__((no_sanitize("address"))) PyObject* fast_method(PyObject* self, PyObject* const* args,
                                                              Py_ssize_t nargs) noexcept {
    try {
        conn* c = conn_of(self);
        return c ? Fn(*c, args, nargs) : nullptr;
    } catch (...) {
        return translate_current();
    }
}

bool no_args(const char* name, Py_ssize_t nargs) {
    if (nargs == 0) return true;
    PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
    return false;
}

// start_query / start_stream / start_execute(sql: str, args=None)
template <void (conn::*Start)(const std::string&, const py::object&)>
PyObject* fast_start(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "start_*(sql: str, args=None)");
        return nullptr;
    }
    Py_ssize_t n = 0;
    const char* sql = PyUnicode_AsUTF8AndSize(args[0], &n);
    if (!sql) return nullptr;
    (c.*Start)(std::string(sql, static_cast<std::size_t>(n)),
               py::reinterpret_borrow<py::object>(nargs == 2 ? args[1] : Py_None));
    Py_RETURN_NONE;
}
PyObject* fast_start_query(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    return fast_start<&conn::start_query>(c, args, nargs);
}
PyObject* fast_start_stream(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    return fast_start<&conn::start_stream>(c, args, nargs);
}
PyObject* fast_start_execute(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    return fast_start<&conn::start_execute>(c, args, nargs);
}
PyObject* fast_poll(conn& c, PyObject* const*, Py_ssize_t nargs) {
    return no_args("poll", nargs) ? PyLong_FromLong(c.poll()) : nullptr;
}
PyObject* fast_wait(conn& c, PyObject* const*, Py_ssize_t nargs) {
    if (!no_args("wait", nargs)) return nullptr;
    c.wait();
    Py_RETURN_NONE;
}
PyObject* fast_results(conn& c, PyObject* const*, Py_ssize_t nargs) {
    return no_args("results", nargs) ? c.results().release().ptr() : nullptr;
}
PyObject* fast_fileno(conn& c, PyObject* const*, Py_ssize_t nargs) {
    return no_args("fileno", nargs) ? PyLong_FromLong(c.fileno()) : nullptr;
}
PyObject* fast_timeout(conn& c, PyObject* const*, Py_ssize_t nargs) {
    return no_args("timeout", nargs) ? c.timeout().release().ptr() : nullptr;
}

// A green-thread hub's read wait on the connection's own socket (green.patch_gevent()):
// polls, and while the operation waits to read socket `fd`, has the hub switch back to the
// current greenlet when `fd` turns readable (io.start(current.switch)) or when the
// operation's deadline passes (a timer throwing `expired` into it), runs the greenlet's
// switch_out() hook if it has one (on the hub itself: gevent's BlockingSwitchOutError) and
// switches to the hub. Returns the first other poll() state (POLL_OK, or a wait on another
// socket, a connect's or a cancellation's, which the caller serves). Arguments: (fd, io,
// hub, getcurrent, switch, expired) with `switch` the unbound greenlet.switch; no watcher
// is left started.
PyObject* intern(const char* s) {
    PyObject* o = PyUnicode_InternFromString(s);
    if (!o) throw py::error_already_set();
    return o;
}
// Calls obj.name() keeping the exception already set, if any (a cleanup after a failure).
bool call_keeping_error(PyObject* obj, PyObject* name) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject* r = PyObject_CallMethodNoArgs(obj, name);
    const bool ok = r != nullptr;
    Py_XDECREF(r);
    if (type) {
        if (!ok) PyErr_Clear();
        PyErr_Restore(type, value, tb);
    }
    return ok;
}
// Not instrumented by AddressSanitizer (nor fast_method, which calls it): the greenlet it
// switches away from is saved by copying its stack, these frames included, with memcpy,
// which ASan would report for the frames' redzones (a false positive of stack switching).
__attribute__((no_sanitize("address"))) PyObject* fast_watch_read(conn& c, PyObject* const* args, Py_ssize_t nargs) {
    static PyObject* const s_switch_out = intern("switch_out");
    static PyObject* const s_switch = intern("switch");
    static PyObject* const s_throw = intern("throw");
    static PyObject* const s_start = intern("start");
    static PyObject* const s_stop = intern("stop");
    static PyObject* const s_close = intern("close");
    static PyObject* const s_loop = intern("loop");
    static PyObject* const s_timer = intern("timer");
    if (nargs != 6 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "watch_read(fd: int, io, hub, getcurrent, switch, expired)");
        return nullptr;
    }
    const long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return nullptr;  // (OverflowError)
    PyObject *io = args[1], *hub = args[2], *getcurrent = args[3], *switch_to = args[4], *expired = args[5];
    for (;;) {
        const int st = c.poll();
        if (st != poll_read || c.fileno() != fd) return PyLong_FromLong(st);
        py::object cur = py::reinterpret_steal<py::object>(PyObject_CallNoArgs(getcurrent));
        if (!cur) return nullptr;
        PyObject* hook = nullptr;
#if PY_VERSION_HEX >= 0x030D0000
        if (PyObject_GetOptionalAttr(cur.ptr(), s_switch_out, &hook) < 0) return nullptr;
#else
        if (_PyObject_LookupAttr(cur.ptr(), s_switch_out, &hook) < 0) return nullptr;  // (3.13's name above)
#endif
        if (hook) {
            PyObject* r = PyObject_CallNoArgs(hook);
            Py_DECREF(hook);
            if (!r) return nullptr;
            Py_DECREF(r);
        }
        py::object timer;
        if (c.timed()) {  // the operation's deadline (read_timeout, a KILL's schedule)
            py::object loop = py::reinterpret_steal<py::object>(PyObject_GetAttr(hub, s_loop));
            if (!loop) return nullptr;
            py::object secs = c.timeout();
            timer = py::reinterpret_steal<py::object>(PyObject_CallMethodOneArg(loop.ptr(), s_timer, secs.ptr()));
            if (!timer) return nullptr;
            py::object thrower = py::reinterpret_steal<py::object>(PyObject_GetAttr(cur.ptr(), s_throw));
            if (!thrower) return nullptr;
            PyObject* r = PyObject_CallMethodObjArgs(timer.ptr(), s_start, thrower.ptr(), expired, nullptr);
            if (!r) return nullptr;
            Py_DECREF(r);
        }
        py::object wake = py::reinterpret_steal<py::object>(PyObject_GetAttr(cur.ptr(), s_switch));
        if (!wake) return nullptr;
        PyObject* r = PyObject_CallMethodOneArg(io, s_start, wake.ptr());
        if (!r) {
            if (timer) call_keeping_error(timer.ptr(), s_close);
            return nullptr;
        }
        Py_DECREF(r);
        r = PyObject_CallOneArg(switch_to, hub);  // back on readable, expiry, kill, timeout
        Py_XDECREF(r);
        // Stop what was started whatever woke this greenlet, keeping an exception if any.
        bool ok = call_keeping_error(io, s_stop);
        if (timer) ok = call_keeping_error(timer.ptr(), s_close) && ok;
        if (!r) {
            if (!PyErr_ExceptionMatches(expired)) return nullptr;  // killed, gevent.Timeout
            PyErr_Clear();  // the deadline passed: the next poll() reports the timeout
        } else if (!ok) {
            return nullptr;
        }
    }
}

#define AMBISQL_FAST(name) \
    { #name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_method<&fast_##name>)), METH_FASTCALL, nullptr }
PyMethodDef fast_methods[] = {AMBISQL_FAST(start_query), AMBISQL_FAST(start_stream), AMBISQL_FAST(start_execute),
                              AMBISQL_FAST(poll),        AMBISQL_FAST(wait),         AMBISQL_FAST(results),
                              AMBISQL_FAST(fileno),      AMBISQL_FAST(timeout),      AMBISQL_FAST(watch_read)};
#undef AMBISQL_FAST

}  // namespace

namespace ambisql::pybinding {
PyTypeObject* conn_type = nullptr;

// For cursor.cpp, which has checked that `c` is a _Conn: the _Conn methods themselves,
// through their wrapper (fast_method: the exception mapping).
namespace {
bool succeeded(PyObject* r) {
    Py_XDECREF(r);
    return r != nullptr;
}
}  // namespace

bool start_query(PyObject* c, PyObject* query, PyObject* args) noexcept {
    PyObject* a[] = {query, args};
    return succeeded(fast_method<&fast_start_query>(c, a, 2));
}
// (Not instrumented by AddressSanitizer: a greenlet switch inside copies this frame.)
__attribute__((no_sanitize("address"))) PyObject* watch_read(PyObject* c, PyObject* const* args) noexcept {
    return fast_method<&fast_watch_read>(c, args, 6);
}
bool wait(PyObject* c) noexcept { return succeeded(fast_method<&fast_wait>(c, nullptr, 0)); }
bool stream_pending(PyObject* c) noexcept {
    conn* k = conn_of(c);
    if (!k) PyErr_Clear();
    return k && k->stream_pending();
}
PyObject* results(PyObject* c) noexcept { return fast_method<&fast_results>(c, nullptr, 0); }
}  // namespace ambisql::pybinding

PYBIND11_MODULE(_ambisql, m) {
    m.doc() = "ambisql's C++ core for Python (use the ambisql package)";
    if (!pyconv::init_values()) throw py::error_already_set();
    if (!pybinding::add_cursor_type(m.ptr())) throw py::error_already_set();
    m.attr("Column") = py::reinterpret_borrow<py::object>(pyconv::column_item_type_object());
    m.def("set_error_factory", [](py::object f) {
        Py_XDECREF(error_factory);
        error_factory = f.release().ptr();
    });
    // Anything the core throws (a bad URL, say) becomes the PEP 249 class it maps to.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ambisql::error& e) {
            set_mapped(map_error(e.diag(), false, ""));
        }
    });
    // The retry rule of the C++ pool and transact() (ambisql/retry.hpp), for an error number
    // as the Python exceptions carry it: "retriable", "outcome_unknown" or "fatal".
    m.def("classify", [](int number, bool statements_sent, bool in_transaction, bool commit_sent) {
        diagnostics d;
        if (number >= 2000 && number < 3000) {  // the client's numbers (err.py)
            d.kind = error_kind::client;
            if (number == 2006 || number == 2013 || number == 2055) {
                d.kind = error_kind::network;
                d.code = make_error_code(errc::connection_broken);
            } else if (number == 2002 || number == 2003) {
                d.kind = error_kind::network;
                d.code = make_error_code(errc::connect_failed);
            } else {
                d.code = make_error_code(errc::protocol_error);
            }
        } else if (number > 0) {
            d.kind = error_kind::server;
            d.server_code = static_cast<std::uint16_t>(number);
            d.code = std::error_code(number, server_category());
        } else {
            d.kind = error_kind::client;
            d.code = make_error_code(errc::bad_value);
        }
        switch (classify(d, failure_context{statements_sent, in_transaction, commit_sent})) {
            case failure_class::retriable: return "retriable";
            case failure_class::outcome_unknown: return "outcome_unknown";
            default: return "fatal";
        }
    });
    m.attr("POLL_OK") = static_cast<int>(poll_ok);
    m.attr("POLL_READ") = static_cast<int>(poll_read);
    m.attr("POLL_WRITE") = static_cast<int>(poll_write);
    py::class_<conn> cls(m, "_Conn");
    pybinding::conn_type = reinterpret_cast<PyTypeObject*>(cls.ptr());
    for (PyMethodDef& d : fast_methods) {
        py::object descr = py::reinterpret_steal<py::object>(
            PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &d));
        if (!descr) throw py::error_already_set();
        cls.attr(d.ml_name) = descr;
    }
    cls.def(py::init<>())
        .def("start_connect", &conn::start_connect)
        .def("start_execute_many", &conn::start_execute_many)
        .def("start_read_rows", &conn::start_read_rows)
        .def("start_next_result", &conn::start_next_result)
        .def("start_discard", &conn::start_discard)
        .def("start_ping", &conn::start_ping)
        .def("start_reset", &conn::start_reset)
        .def("start_select_db", &conn::start_select_db)
        .def("start_set_charset", &conn::start_set_charset)
        .def("abort", &conn::abort)
        .def("cancel", &conn::cancel)
        .def("close", &conn::close)
        .def("batch", &conn::batch)
        .def("stream_description", &conn::stream_description)
        .def("stream_ok", &conn::stream_ok)
        .def("last_ok", &conn::last_ok)
        .def("literal", &conn::literal)
        .def("format", &conn::format)
        .def_property_readonly("busy", &conn::busy)
        .def_property_readonly("is_open", &conn::is_open)
        .def_property_readonly("rows_pending", &conn::rows_pending)
        .def_property_readonly("more_results", &conn::more_results)
        .def_property_readonly("connection_id", &conn::connection_id)
        .def_property_readonly("server_version", &conn::server_version)
        .def_property_readonly("server_status", &conn::server_status)
        .def_property_readonly("character_set", &conn::character_set)
        .def_property_readonly("tls_active", &conn::tls_active)
        .def_property_readonly("host_info", &conn::host_info);
}
