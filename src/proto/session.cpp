// The session: dispatch of resume() to the running operation, and what every operation
// shares (starting, finishing, failing). Each operation lives in a file of its own:
//   transport.cpp      packets <-> compression <-> TLS <-> the driver's bytes
//   connect.cpp        handshake and authentication
//   query.cpp          text queries, reading resultsets, streaming
//   infile.cpp         LOCAL INFILE requests
//   simple.cpp         commands answered by OK/ERR (ping, init_db, reset, quit)
//   statements.cpp     prepare / execute / close / reset of statements
//   statement_cache.cpp  the per-connection LRU of prepared statements
//   session_state.cpp  OK packets' tracked state (character set, schema)
//   pipeline.cpp       pipelines
//   execute_many.cpp   bulk execution
#include "proto/session.hpp"

#include "proto/session_detail.hpp"

namespace ambisql::proto {

namespace {
// Server errors after which the server closes the connection.
bool closes_connection(std::uint16_t code) {
    return code == 1927 /* ER_CONNECTION_KILLED */ || code == 1053 /* ER_SERVER_SHUTDOWN */ ||
           code == 1152 /* ER_ABORTING_CONNECTION */ || code == 1184 /* ER_NEW_ABORTING_CONNECTION */ ||
           code == 4031 /* idle timeout */;
}
}  // namespace

next_action session::resume() {
    next_action a = step();
    while (a == next_action::done && many_ != many_phase::none) a = step_many();
    return a;
}

next_action session::step() {
    switch (op_) {
        case op::none: return next_action::done;
        case op::connect: return step_connect();
        case op::query: return step_query();
        case op::simple:
        case op::quit: return step_simple();
        case op::prepare: return step_prepare();
        case op::pipeline: return step_pipeline();
        case op::bulk: return step_bulk();
    }
    return next_action::done;
}

void session::record_sent() noexcept {
    // (a command refused before it started, by can_start(), sent nothing; nor did a connect
    // of the work)
    const bool started = op_ != op::none && op_ != op::connect;
    diag_.sent = {true, started && cmd_written_ > 0, started ? cmd_in_tx_ : may_be_in_transaction(),
                  started && cmd_commit_, galera_};
}

next_action session::fail(error_kind kind, errc code, std::string message, bool usable) {
    diag_.kind = kind;
    diag_.code = code;
    diag_.server_code = 0;
    diag_.sqlstate.clear();
    diag_.message = std::move(message);
    diag_.connection_usable = usable;
    record_sent();
    if (!usable) {
        broken_ = true;
        connected_ = false;
        stream_ = stream_state::idle;
        deferred_.clear();
    }
    op_ = op::none;
    infile_armed_ = false;
    return next_action::done;
}

next_action session::fail_server(byte_span payload, error_kind kind) {
    err_packet e;
    if (!parse_err(payload, e))
        return fail(error_kind::protocol, errc::protocol_error, "malformed ERR packet", false);
    bool fatal = kind == error_kind::auth || closes_connection(e.code) || op_ == op::connect;
    status_known_ = false;
    if (closes_connection(e.code)) kind = error_kind::network;
    fail(kind, errc::protocol_error, std::string(e.message), !fatal);
    diag_.code = std::error_code(e.code, server_category());
    diag_.server_code = e.code;
    diag_.sqlstate.assign(e.sqlstate);
    if (!fatal && stream_ != stream_state::idle) stream_ = stream_state::idle;
    const diagnostics::sent_record sent = diag_.sent;
    if (!fatal && deferred_.kind != error_kind::none) diag_ = std::move(deferred_);  // the first failure counts
    diag_.sent = sent;
    deferred_.clear();
    return next_action::done;
}

next_action session::finish() noexcept {
    op_ = op::none;
    infile_armed_ = false;
    if (deferred_.kind != error_kind::none) {
        diag_ = std::move(deferred_);
        deferred_.clear();
    }
    return next_action::done;
}

bool session::can_start() {
    if (op_ != op::none) return false;  // the connection layer reports this
    diag_.clear();
    pending_charset_.clear();
    if (broken_) {
        fail(error_kind::client, errc::connection_broken, "the connection is broken; reconnect", false);
        return false;
    }
    if (!connected_) {
        fail(error_kind::client, errc::not_connected, "not connected", true);
        return false;
    }
    if (result_pending()) {
        fail(error_kind::client, errc::result_pending,
             "a streamed result is still being read; read or discard it first", true);
        return false;
    }
    write_pending_closes();
    return true;
}

void session::start_op(op o, st s) {
    diag_.clear();
    deferred_.clear();
    cmd_in_tx_ = o != op::connect && (may_be_in_transaction() || !(status_ & server_status::autocommit));
    cmd_commit_ = false;
    cmd_written_ = 0;
    op_ = o;
    st_ = s;
    infile_armed_ = false;  // armed again by start_query for its own LOAD DATA LOCAL only
}

void session::begin_command(std::uint8_t cmd) {
    new_exchange(0);
    begin_packet(out_);
    out_.push_back(cmd);
}

next_action session::send_packet(std::string_view payload) {
    std::size_t s = begin_packet(out_);
    out_.insert(out_.end(), payload.begin(), payload.end());
    end_packet(out_, s, seq_);
    return next_action::write;
}

void session::close() noexcept {
    op_ = op::none;
    forget_statements();
    connected_ = false;
    stream_ = stream_state::idle;
    reset_wire();
}

}  // namespace ambisql::proto
