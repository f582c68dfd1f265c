// Prepared statements: prepare, execute (through the cache or of a given statement),
// long data, close, reset.
#include "proto/session.hpp"

#include "proto/binary.hpp"
#include "proto/result_builder.hpp"
#include "proto/session_detail.hpp"

namespace ambisql::proto {

bool session::start_prepare(std::string_view sql, statement* out) {
    if (!can_start()) return false;
    start_op(op::prepare, st::prep_ok);
    prep_out_ = out;
    then_execute_ = exec_pipelined_ = cache_result_ = then_bulk_ = false;
    note_untracked(sql);
    std::size_t s = out_.size();
    begin_command(command::stmt_prepare);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, s, seq_);
    return true;
}

bool session::start_execute(const statement& st, std::span<const sql_arg> args, results* out) {
    if (!can_start() || !own_statement(st)) return false;
    if (args.size() != st.params) {
        fail(error_kind::client, errc::placeholder_mismatch, param_count_message(st.params, args.size()), true);
        return false;
    }
    if (!build_execute(st.id, args)) {
        fail(error_kind::client, errc::bad_value, unbindable, true);
        return false;
    }
    for (const auto& ld : long_payloads_) write_command(ld, st.id);
    write_command(exec_payload_, st.id);
    start_op(op::query, st::first);
    begin_results(out, true);
    exec_stmt_ = st.id;
    return true;
}

// Serialises an execute of statement `id` into exec_payload_, preceded by the
// SEND_LONG_DATA payloads of its large parameters (long_payloads_).
bool session::build_execute(std::uint32_t id, std::span<const sql_arg> args) {
    long_payloads_.clear();
    exec_payload_.clear();
    // A new statement's types are recorded once its id is known (prepared()).
    if (id == last_prepared_statement) prep_types_.clear();
    if (write_execute(exec_payload_, id, args, true,
                      id == last_prepared_statement ? &prep_types_ : &stmt_info_[id].types))
        return false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (!is_long_data(args[i])) continue;
        std::string_view data = args[i].text();
        for (std::size_t at = 0; at < data.size(); at += long_data_piece)
            write_long_data(long_payloads_.emplace_back(), id, static_cast<std::uint16_t>(i),
                            data.substr(at, long_data_piece));
    }
    return true;
}

// One COM_STMT_EXECUTE command packet, values inline; false (nothing appended) when an
// argument cannot be bound.
bool session::append_execute(std::uint32_t id, std::span<const sql_arg> args) {
    new_exchange(0);
    const std::size_t at = begin_packet(out_);
    if (write_execute(out_, id, args, false, id == last_prepared_statement ? nullptr : &stmt_info_[id].types)) {
        out_.resize(at);
        return false;
    }
    end_packet(out_, at, seq_);
    return true;
}

// One command packet (sequence 0) with the statement id written at bytes 1..4.
void session::write_command(std::span<const std::uint8_t> payload, std::uint32_t id) {
    new_exchange(0);
    const std::size_t s = begin_packet(out_);
    out_.insert(out_.end(), payload.begin(), payload.end());
    for (int i = 0; i < 4; ++i) out_[s + 4 + 1 + i] = static_cast<std::uint8_t>(id >> (8 * i));
    end_packet(out_, s, seq_);
}

bool session::start_execute(std::string_view sql, std::span<const sql_arg> args, results* out) {
    if (auto it = cache_index_.find(sql); it != cache_index_.end()) {
        cache_.splice(cache_.begin(), cache_, it->second);  // most recently used
        return start_execute(it->second->second, args, out);
    }
    if (op_ == op::none) evict_for_insert();
    if (!can_start()) return false;
    if (!build_execute(last_prepared_statement, args)) {
        fail(error_kind::client, errc::bad_value, unbindable, true);
        return false;
    }
    start_op(op::prepare, st::prep_ok);
    begin_results(out, true);
    prep_out_ = nullptr;
    prep_sql_.assign(sql);
    note_untracked(sql);
    then_execute_ = cache_result_ = true;
    then_bulk_ = false;
    // MariaDB executes "the statement just prepared" (id 0xFFFFFFFF): one round trip;
    // large parameters need the real id for their SEND_LONG_DATA, so they wait for it.
    exec_pipelined_ = hs_.is_mariadb && long_payloads_.empty();
    std::size_t s = out_.size();
    begin_command(command::stmt_prepare);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, s, seq_);
    if (exec_pipelined_) {
        std::uint8_t seq = 0;
        s = begin_packet(out_);
        out_.insert(out_.end(), exec_payload_.begin(), exec_payload_.end());
        end_packet(out_, s, seq);
    }
    return true;
}

bool session::start_close_statement(const statement& st) {
    if (!can_start() || !own_statement(st)) return false;
    start_op(op::simple, st::flush_only);
    simple_cmd_ = command::stmt_close;
    pending_closes_.push_back(st.id);
    write_pending_closes();
    return true;
}

bool session::start_reset_statement(const statement& st) {
    if (!can_start() || !own_statement(st)) return false;
    const std::uint32_t id = st.id;
    std::uint8_t le[4] = {static_cast<std::uint8_t>(id), static_cast<std::uint8_t>(id >> 8),
                          static_cast<std::uint8_t>(id >> 16), static_cast<std::uint8_t>(id >> 24)};
    if (!start_simple(command::stmt_reset, std::string_view(reinterpret_cast<const char*>(le), 4))) return false;
    if (auto it = stmt_info_.find(id); it != stmt_info_.end()) it->second.types.clear();  // sent again next time
    return true;
}

next_action session::step_prepare() {
    for (;;) {
        byte_span p;
        switch (st_) {
            case st::prep_ok: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
                if (p[0] == 0xFF) {
                    if (!exec_pipelined_) return fail_server(p);
                    // The execute sent behind it fails as well: read its answer, then
                    // report this failure.
                    fail_server(p);
                    if (!connected()) return next_action::done;
                    deferred_ = diag_;
                    diag_.clear();
                    op_ = op::query;
                    st_ = st::first;
                    mode_ = mode::discard;
                    new_exchange(1);
                    return step_query();
                }
                prepare_ok ok;
                if (!parse_prepare_ok(p, ok))
                    return fail(error_kind::protocol, errc::protocol_error, "malformed prepare response", false);
                prep_ = statement{ok.statement_id, ok.params, ok.columns};
                prep_defs_left_ = ok.params;
                prep_meta_.clear();
                st_ = st::prep_params;
                continue;
            }
            case st::prep_params:
            case st::prep_columns: {
                while (prep_defs_left_ > 0) {
                    if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                    --prep_defs_left_;
                    // Column definitions are kept when executes may skip them.
                    if (st_ == st::prep_columns && (caps_ & cap::mariadb_cache_metadata)) {
                        detail::result_builder::append_column(prep_meta_, p);
                    }
                }
                const bool params = st_ == st::prep_params;
                if ((params ? prep_.params : prep_.columns) > 0 && !(caps_ & cap::deprecate_eof)) {
                    st_ = params ? st::prep_params_eof : st::prep_columns_eof;
                    continue;
                }
                if (!params) return prepared();
                prep_defs_left_ = prep_.columns;
                st_ = st::prep_columns;
                continue;
            }
            case st::prep_params_eof:
            case st::prep_columns_eof: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (!is_eof_packet(p))
                    return fail(error_kind::protocol, errc::protocol_error, "expected EOF after definitions", false);
                if (st_ == st::prep_columns_eof) return prepared();
                prep_defs_left_ = prep_.columns;
                st_ = st::prep_columns;
                continue;
            }
            default: return fail(error_kind::protocol, errc::protocol_error, "bad prepare state", false);
        }
    }
}

next_action session::prepared() {
    prep_.session = epoch_;
    if (prep_out_) *prep_out_ = prep_;
    stmt_state& known = stmt_info_[prep_.id];
    if ((caps_ & cap::mariadb_cache_metadata) && prep_.columns > 0) known.meta.swap(prep_meta_);
    if (then_execute_) known.types.swap(prep_types_);  // empty unless the execute's types are known
    prep_types_.clear();
    exec_stmt_ = prep_.id;
    if (cache_result_) cache_insert(prep_sql_, prep_);
    if (then_bulk_) {
        if (prep_.params != bulk_width_)
            return fail(error_kind::client, errc::placeholder_mismatch,
                        "the statement has " + std::to_string(prep_.params) + " parameters, rows have " +
                            std::to_string(bulk_width_) + " values",
                        true);
        if (!(caps_ & cap::mariadb_stmt_bulk)) {
            // MySQL: no bulk command, no execute of "the statement just prepared": the rows
            // as pipelined executes of the statement, now that its id is known. Its close,
            // when the cache does not keep it, goes out after them.
            const bool owed = !pending_closes_.empty() && pending_closes_.back() == prep_.id;
            if (owed) pending_closes_.pop_back();
            op_ = op::none;
            start_pipeline(executes_of(prep_, bulk_values_, bulk_width_));
            if (owed) pending_closes_.push_back(prep_.id);
            return op_ == op::none ? end_pipeline() : step_pipeline();
        }
        bulk_id_ = prep_.id;
        op_ = op::bulk;
        return send_bulk_batch();
    }
    if (!then_execute_) return finish();
    if (exec_pipelined_) {
        new_exchange(1);  // the execute's response follows, numbered from its own request
    } else {
        for (const auto& ld : long_payloads_) write_command(ld, prep_.id);
        write_command(exec_payload_, prep_.id);
    }
    op_ = op::query;
    st_ = st::first;
    return step_query();
}

}  // namespace ambisql::proto
