// execute_many: COM_STMT_BULK_EXECUTE batches on MariaDB, pipelined executes elsewhere.
#include "proto/session.hpp"

#include "proto/binary.hpp"
#include "proto/pipeline_access.hpp"
#include "proto/result_builder.hpp"
#include "proto/session_detail.hpp"

namespace ambisql::proto {

bool session::start_execute_many(std::string_view sql, std::span<const sql_arg> values, std::size_t width,
                                 results* out) {
    if (width == 0 || values.size() % width != 0) {
        if (!can_start()) return false;
        fail(error_kind::client, errc::placeholder_mismatch, "execute_many: the values do not form whole rows", true);
        return false;
    }
    for (const sql_arg& a : values) {
        if (a.type() == sql_arg::kind::identifier) {  // refused before anything is sent
            if (!can_start()) return false;
            fail(error_kind::client, errc::bad_value, "execute_many: an identifier is not a bindable value", true);
            return false;
        }
    }
    if (values.empty()) return start_execute_many_rows(sql, values, width, out);
    if (!can_start()) return false;
    if (out) detail::result_builder::clear(*out);
    many_began_ = (status_ & server_status::autocommit) && !(status_ & server_status::in_trans);
    many_sql_.assign(sql);
    many_values_ = values;
    many_width_ = width;
    many_out_ = out;
    many_error_.clear();
    many_ = many_phase::begin;
    start_internal_query(many_began_ ? "BEGIN" : "SAVEPOINT ambisql_many");
    return true;
}

// The transaction around execute_many's rows, one step each time a command of it ends:
// after BEGIN / SAVEPOINT the rows; after the rows COMMIT / RELEASE SAVEPOINT, or, when a
// row failed, ROLLBACK / ROLLBACK TO SAVEPOINT; after that, the operation's outcome (the
// rows' failure first). Called with no command running.
next_action session::step_many() {
    switch (many_) {
        case many_phase::begin:
            if (failed()) break;  // not even begun: nothing was sent after it
            many_ = many_phase::rows;
            if (start_execute_many_rows(many_sql_, many_values_, many_width_, many_out_)) return step();
            [[fallthrough]];  // refused before sending (diag_ says why): rolled back all the same
        case many_phase::rows: {
            if (broken_) break;  // the server rolls back what the lost connection had begun
            const bool rows_failed = failed();
            many_error_ = rows_failed ? diag_ : diagnostics{};
            many_ = many_phase::end;
            start_internal_query(rows_failed ? (many_began_ ? "ROLLBACK" : "ROLLBACK TO SAVEPOINT ambisql_many")
                                             : (many_began_ ? "COMMIT" : "RELEASE SAVEPOINT ambisql_many"));
            return step();
        }
        case many_phase::end:
            // The rows' failure is what the caller hears of (a ROLLBACK TO SAVEPOINT after a
            // deadlock, which ended the whole transaction, fails harmlessly); a COMMIT's own
            // failure otherwise.
            if (many_error_.kind != error_kind::none && !broken_) diag_ = std::move(many_error_);
            break;
        case many_phase::none: break;
    }
    many_ = many_phase::none;
    many_error_.clear();
    return next_action::done;
}

bool session::start_execute_many_rows(std::string_view sql, std::span<const sql_arg> values, std::size_t width,
                                      results* out) {
    if (out) detail::result_builder::clear(*out);
    auto it = cache_index_.find(sql);
    if (!(caps_ & cap::mariadb_stmt_bulk) && (it != cache_index_.end() || hs_.is_mariadb)) {
        // Pipelined executes through the cache (MariaDB prepares in the same round trip).
        bulk_pipe_.clear();
        for (std::size_t r = 0; r < values.size() / width; ++r)
            bulk_pipe_.execute_args(sql, values.subspan(r * width, width));
        bulk_out_ = out;
        return start_pipeline(bulk_pipe_);
    }
    if (it == cache_index_.end()) evict_for_insert();
    if (!can_start()) return false;
    bulk_values_ = values;
    bulk_width_ = width;
    bulk_next_ = 0;
    bulk_affected_ = 0;
    bulk_out_ = out;
    bulk_in_result_ = false;
    if (it != cache_index_.end()) {
        cache_.splice(cache_.begin(), cache_, it->second);
        const statement& st = it->second->second;
        if (st.params != width) {
            fail(error_kind::client, errc::placeholder_mismatch,
                 "the statement has " + std::to_string(st.params) + " parameters, rows have " + std::to_string(width) +
                     " values",
                 true);
            return false;
        }
        bulk_id_ = st.id;
        stmt_info_[st.id].types.clear();  // bulk executes bind types of their own
        start_op(op::bulk, st::bulk_reply);
        if (values.empty()) {  // nothing to send
            op_ = op::none;
            ok_info ok;
            if (out) detail::result_builder::set_ok(detail::result_builder::add(*out), ok);
            return true;
        }
        send_bulk_batch();
        return op_ != op::none || !failed();
    }
    // Prepared first (one round trip), then the batches.
    start_op(op::prepare, st::prep_ok);
    prep_out_ = nullptr;
    prep_sql_.assign(sql);
    note_untracked(sql);
    cache_result_ = then_bulk_ = true;
    then_execute_ = exec_pipelined_ = false;
    std::size_t at = out_.size();
    begin_command(command::stmt_prepare);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, at, seq_);
    return true;
}

// execute_many without bulk operations: one execute stage of `st` per row.
pipeline& session::executes_of(const statement& st, std::span<const sql_arg> values, std::size_t width) {
    bulk_pipe_.clear();
    for (std::size_t r = 0; r < values.size() / width; ++r)
        detail::pipeline_access::add_execute(bulk_pipe_, st, values.subspan(r * width, width));
    return bulk_pipe_;
}

// Writes the next batch of rows; the reply is read in st::bulk_reply.
next_action session::send_bulk_batch() {
    constexpr std::size_t batch_bytes = 1 << 20;  // well under any max_allowed_packet in use
    if (bulk_next_ * bulk_width_ >= bulk_values_.size()) {  // no rows at all
        ok_info ok;
        if (bulk_out_) detail::result_builder::set_ok(detail::result_builder::add(*bulk_out_), ok);
        return finish();
    }
    new_exchange(0);
    std::size_t at = begin_packet(out_);
    std::size_t next = bulk_next_;
    if (write_bulk_execute(out_, bulk_id_, bulk_values_, bulk_width_, bulk_next_, batch_bytes, next)) {
        out_.resize(at);  // not reached: identifiers are refused when the operation starts
        return fail(error_kind::client, errc::bad_value, "execute_many: an identifier is not a bindable value", true);
    }
    end_packet(out_, at, seq_);
    bulk_next_ = next;
    st_ = st::bulk_reply;
    return next_action::write;
}

// A batch is answered with an OK, or, for a statement that returns rows (INSERT ...
// RETURNING: MariaDB's prepare says it has no columns, so only the answer tells), with a
// result set of the batch's rows, read as a query's (binary rows) into the output.
next_action session::step_bulk() {
    if (bulk_in_result_) {
        op_ = op::query;
        next_action a = step_query();
        if (op_ != op::none) {  // the result set goes on
            op_ = op::bulk;
            return a;
        }
        bulk_in_result_ = false;
        if (failed()) return a;
        op_ = op::bulk;
        if (bulk_next_ * bulk_width_ < bulk_values_.size()) return send_bulk_batch();
        return finish();
    }
    byte_span p;
    if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
    if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
    if (p[0] == 0xFF) return fail_server(p);  // rows of earlier batches stay applied
    if (p[0] != 0x00) {
        mode_ = mode::buffered;
        out_results_ = bulk_out_ ? bulk_out_ : &bulk_scratch_;
        binary_rows_ = true;
        stream_ = stream_state::idle;
        exec_stmt_ = bulk_id_;
        if (!begin_resultset(p)) return next_action::done;
        bulk_in_result_ = true;
        return step_bulk();
    }
    ok_info ok;
    if (!read_ok(p, ok))
        return fail(error_kind::protocol, errc::protocol_error, "expected an OK packet after a bulk execute", false);
    set_status(ok.status);
    bulk_affected_ += ok.affected_rows;
    if (bulk_next_ * bulk_width_ < bulk_values_.size()) return send_bulk_batch();
    ok.affected_rows = bulk_affected_;
    if (bulk_out_) detail::result_builder::set_ok(detail::result_builder::add(*bulk_out_), ok);
    return finish();
}

}  // namespace ambisql::proto
