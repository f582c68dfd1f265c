// ambisql._ambisql._Conn: one connection of the Python module over the core's
// non-blocking connection (nb_connection). Every mode of the Python API drives the same
// operations: blocking calls wait in poll(2) with the GIL released; a wait callback
// (set_wait_callback, gevent, eventlet) or an event loop calls poll() itself. No protocol
// logic here: operations, escaping and decoding are the core's.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "ambisql/error.hpp"
#include "ambisql/nb_connection.hpp"
#include "errors.hpp"
#include "options.hpp"
#include "values.hpp"

namespace ambisql::pybinding {

namespace py = pybind11;

enum poll_state { poll_ok = 0, poll_read = 1, poll_write = 2 };

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
    // The query, then COMMIT, in one write (a pipeline of two: one round trip), for a
    // caller whose next step is a commit (ambisql.twisted's ConnectionPool.runQuery and
    // runOperation). results() gives the query's, and raises the query's failure, else
    // the COMMIT's. Only with no transaction open (Cursor._execute_and_commit sees to it):
    // a COMMIT after a failed statement then commits nothing, as a rollback would.
    void start_query_commit(const std::string& sql, const py::object& args) {
        not_waited_on();
        std::string text = args.is_none() && codec_now().utf8 ? sql : query_text(sql, args);
        if (!pipe_) pipe_ = std::make_unique<pipeline>();
        pipe_->clear();
        pipe_->query(text);
        pipe_->query("COMMIT");
        run([&] { nb_.start_pipeline(*pipe_); });
        piped_ = true;
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
    // Drives the operation to its end, blocking in poll(2) with the GIL released, and
    // raises its error. A signal whose handler raises (KeyboardInterrupt) interrupts it:
    // the core's rule (nb_connection::cancel()) kills the command on the server and drains
    // its answer, or closes the connection at a second signal or at the cancel timeout;
    // the signal's exception is raised then.
    void wait() {
        not_waited_on();
        if (drive_blocking()) throw py::error_already_set();
        finish();
    }
    // Cancels the running operation (if not cancelled already) and drives the
    // cancellation to its end the same way, the operation's own outcome dropped: after a
    // wait callback raised (a killed greenlet, a timeout) on a hub that cannot wait
    // through itself, or an exception in a coroutine that cannot await any more.
    void abort() {
        not_waited_on();
        if (!nb_.busy()) return;
        if (!nb_.cancelling()) nb_.cancel();
        if (drive_blocking()) throw py::error_already_set();
    }
    // Interrupts the running operation: the core's rule (nb_connection::cancel()), the
    // one every wait of this module applies: the first interruption kills the command, a
    // second one closes the connection.
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
        if (piped_) {  // start_query_commit()'s
            for (std::size_t i = 0; i < 2; ++i)
                if (!(*pipe_)[i].ok()) raise_mapped(map_error((*pipe_)[i].error(), false, cfg_.host));
        }
        std::size_t index = 0;
        for (const resultset& set : piped_ ? (*pipe_)[0].result() : nb_.result()) {
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
    // (busy and open while another thread waits on it)
    bool busy() const { return in_wait_ || nb_.busy(); }
    // A cancellation is under way (the command killed, its answer being drained): what a
    // waiter whose caller was cancelled must still wait for (trio's shielded waits).
    bool cancelling() const { return nb_.busy() && nb_.cancelling(); }
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
    bool in_transaction() const {
        not_waited_on();
        return nb_.in_transaction();
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
    // wait()'s and abort()'s loop; true when a signal's exception is set.
    bool drive_blocking() {
        bool interrupted = false;
        blocking_wait bw(*this);
        for (;;) {
            if (bw.closed()) break;
            poll_result w = nb_.poll();
            if (w.done()) break;
            int ms = -1;
            if (w.deadline() != clock::time_point::max()) {
                auto left = std::chrono::ceil<std::chrono::milliseconds>(w.deadline() - clock::now()).count();
                ms = left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
            }
            if ((w.events() & wait_for::read) && nb_.bulk_rows() && !interrupted) {
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
                interrupted = true;  // the exception stays set; the rule decides what happens
                nb_.cancel();
            }
        }
        return interrupted;
    }

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
        piped_ = false;
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
    bool piped_ = false;  // the last operation was start_query_commit()'s pipeline
    std::unique_ptr<pipeline> pipe_;
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


}  // namespace ambisql::pybinding
