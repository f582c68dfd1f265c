// Commands answered by a single OK or ERR: ping, init_db, reset_connection; quit.
#include "proto/session.hpp"

#include "proto/session_detail.hpp"

namespace ambisql::proto {

bool session::start_simple(std::uint8_t cmd, std::string_view arg) {
    if (!can_start()) return false;
    start_op(op::simple, st::simple_reply);
    simple_cmd_ = cmd;
    std::size_t s = out_.size();
    begin_command(cmd);
    out_.insert(out_.end(), arg.begin(), arg.end());
    end_packet(out_, s, seq_);
    // A reset restores the global list of tracked variables: the tracking statement goes
    // right behind it, its answer read after the reset's.
    if (cmd == command::reset_connection && (caps_ & cap::session_track)) write_track_request();
    return true;
}

bool session::start_ping() { return start_simple(command::ping, {}); }
bool session::start_init_db(std::string_view db) { return start_simple(command::init_db, db); }
bool session::start_reset_connection() { return start_simple(command::reset_connection, {}); }
bool session::start_quit() {
    if (op_ != op::none) return false;
    diag_.clear();
    if (!connected_ || broken_) {
        connected_ = false;
        return true;  // nothing to say; resume() is done at once
    }
    start_op(op::quit, st::flush);
    std::size_t s = out_.size();
    begin_command(command::quit);
    end_packet(out_, s, seq_);
    return true;
}

next_action session::step_simple() {
    if (st_ == st::flush || st_ == st::flush_only) {
        if (output_pending()) return next_action::write;
        if (op_ == op::none) return next_action::done;  // TLS failed
        if (st_ == st::flush) connected_ = false;
        return finish();
    }
    byte_span p;
    if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
    if (st_ == st::track_reply) {  // after a reset
        read_track_reply(p);
        return finish();
    }
    if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
    if (p[0] == 0xFF) return fail_server(p);
    ok_info ok;
    if (p[0] != 0x00 || !read_ok(p, ok))
        return fail(error_kind::protocol, errc::protocol_error, "expected an OK packet", false);
    set_status(ok.status);
    if (simple_cmd_ == command::reset_connection) {
        // The server dropped every prepared statement of the session, and its character
        // set is the handshake's again.
        reset_session_state();
        if (ok.status & server_status::session_state_changed) (void)read_ok(p, ok);
        forget_statements();
        new_epoch();
        if (track_pending_) {
            new_exchange(1);  // the tracking statement's answer, numbered from its request
            st_ = st::track_reply;
            return step_simple();
        }
    }
    return finish();
}

}  // namespace ambisql::proto
