// Text queries and reading resultsets (text or binary rows), buffered or streamed.
#include "proto/session.hpp"

#include <cctype>

#include "proto/binary.hpp"
#include "proto/result_builder.hpp"
#include "proto/session_detail.hpp"

namespace ambisql::proto {

bool session::start_query(std::string_view sql, results* out) {
    if (!can_start()) return false;
    start_op(op::query, st::first);
    begin_results(out, false);
    infile_armed_ = infile_source_ && load_data_local_file(sql, infile_expected_);
    note_statement(sql);
    infile_sent_ = false;
    std::size_t s = out_.size();
    begin_command(command::query);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, s, seq_);
    return true;
}

// A result's column count packet: the resultset it begins, buffered or streamed.
bool session::begin_resultset(byte_span p) {
    reader r(p);
    std::uint64_t n = r.lenenc();
    // MariaDB CACHE_METADATA: a flag says whether the definitions follow.
    const bool meta_follows = !(caps_ & cap::mariadb_cache_metadata) || r.u8() != 0;
    if (!r.ok() || !r.at_end() || n == 0 || n > 0xFFFF) {
        fail(error_kind::protocol, errc::protocol_error, "malformed column count", false);
        return false;
    }
    ncols_ = static_cast<std::size_t>(n);
    cols_seen_ = 0;
    if (mode_ == mode::buffered) {
        cur_ = &detail::result_builder::add(*out_results_);
    } else {
        cur_ = &stream_set_;
        detail::result_builder::reset(stream_set_);
    }
    detail::result_builder::set_binary(*cur_, binary_rows_);
    if (!meta_follows) {
        auto known = binary_rows_ ? stmt_info_.find(exec_stmt_) : stmt_info_.end();
        if (known == stmt_info_.end() || known->second.meta.empty()) {
            fail(error_kind::protocol, errc::protocol_error,
                 "the server skipped column definitions this connection does not have", false);
            return false;
        }
        detail::result_builder::set_meta(*cur_, known->second.meta);
        cols_seen_ = ncols_;
    }
    st_ = st::columns;
    return true;
}

bool session::start_set_charset(std::string_view cs, std::string_view collation) {
    if (!can_start()) return false;
    auto name = [](std::string_view n) {
        if (n.empty()) return false;
        for (char c : n)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
        return true;
    };
    if (!name(cs) || (!collation.empty() && !name(collation)) || collation_for_charset(cs) == 0) {
        fail(error_kind::client, errc::bad_config,
             "unknown character set or bad collation name '" + std::string(cs) + "'" +
                 (collation.empty() ? std::string() : " / '" + std::string(collation) + "'"),
             true);
        return false;
    }
    std::string sql = "SET NAMES " + std::string(cs);
    if (!collation.empty()) sql += " COLLATE " + std::string(collation);
    start_internal_query(sql);
    pending_charset_.assign(cs);
    return true;
}

void session::start_internal_query(std::string_view sql) {
    start_op(op::query, st::first);
    begin_results(nullptr, false);
    mode_ = mode::discard;
    infile_armed_ = infile_sent_ = false;
    std::size_t s = out_.size();
    begin_command(command::query);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, s, seq_);
}

void session::begin_results(results* out, bool binary) {
    mode_ = out ? mode::buffered : mode::stream;
    out_results_ = out;
    if (out) detail::result_builder::clear(*out);
    stream_ = stream_state::idle;
    batch_rows_ = 0;
    batch_fields_.clear();
    binary_rows_ = binary;
}

bool session::start_query(std::string_view sql, std::span<const sql_arg> args, results* out) {
    if (!can_start()) return false;
    sql_scratch_.clear();
    if (auto ec = format_sql(sql_scratch_, sql, args, escaping_rules())) {
        fail(error_kind::client, static_cast<errc>(ec.value()), ec.message(), true);
        return false;
    }
    return start_query(sql_scratch_, out);
}

// An OK ending one statement's response, kept as a resultset of its own. true: the
// operation ends here (`done` says how); false: more results follow.
bool session::statement_ok(byte_span p, next_action& done) {
    ok_info ok;
    if (!read_ok(p, ok)) {
        done = fail(error_kind::protocol, errc::protocol_error, "malformed OK packet", false);
        return true;
    }
    set_status(ok.status);
    if (mode_ == mode::buffered) {
        detail::result_builder::set_ok(detail::result_builder::add(*out_results_), ok);
    } else if (mode_ == mode::stream) {
        detail::result_builder::reset(stream_set_);
        detail::result_builder::set_ok(stream_set_, ok);
        stream_ = stream_state::set_done;
        done = finish();
        return true;
    }
    if (status_ & server_status::more_results_exist) return false;
    stream_ = stream_state::idle;
    done = finish();
    return true;
}

bool session::start_read_rows() {
    if (op_ != op::none || stream_ != stream_state::rows) return false;
    start_op(op::query, st::rows);
    mode_ = mode::stream;
    batch_rows_ = 0;
    batch_fields_.clear();
    return true;
}

bool session::start_next_result() {
    if (op_ != op::none || stream_ != stream_state::set_done || !(status_ & server_status::more_results_exist))
        return false;
    start_op(op::query, st::first);
    mode_ = mode::stream;
    stream_ = stream_state::idle;
    batch_rows_ = 0;
    batch_fields_.clear();
    return true;
}

bool session::start_discard() {
    if (op_ != op::none) return false;
    batch_rows_ = 0;
    batch_fields_.clear();
    if (stream_ == stream_state::rows) {
        start_op(op::query, st::rows);
    } else if (stream_ == stream_state::set_done && (status_ & server_status::more_results_exist)) {
        start_op(op::query, st::first);
    } else {
        stream_ = stream_state::idle;
        return true;  // nothing left; resume() says done at once
    }
    mode_ = mode::discard;
    return true;
}

next_action session::step_query() {
    for (;;) {
        byte_span p;
        switch (st_) {
            case st::first: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
                const std::uint8_t h = p[0];
                if (h == 0x00) {
                    next_action done;
                    if (statement_ok(p, done)) return done;
                    continue;
                }
                if (h == 0xFF) {
                    if (auto it = binary_rows_ ? stmt_info_.find(exec_stmt_) : stmt_info_.end(); it != stmt_info_.end())
                        it->second.types.clear();  // what the server holds may differ now
                    return fail_server(p);
                }
                if (h == 0xFB) {
                    on_infile_request(p);
                    continue;
                }
                if (!begin_resultset(p)) return next_action::done;
                continue;
            }
            case st::columns: {
                const bool sent = cols_seen_ < ncols_;
                while (cols_seen_ < ncols_) {
                    if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                    detail::result_builder::add_column(*cur_, p);
                    ++cols_seen_;
                }
                if (!detail::result_builder::finish_columns(*cur_, ncols_))
                    return fail(error_kind::protocol, errc::protocol_error, "malformed column definition", false);
                // Definitions sent for a statement (first execute, or changed): kept for
                // the executes that will skip them.
                if (sent && binary_rows_ && (caps_ & cap::mariadb_cache_metadata) && exec_stmt_ != 0)
                    stmt_info_[exec_stmt_].meta = detail::result_builder::meta(*cur_);
                if (!(caps_ & cap::deprecate_eof)) {
                    st_ = st::columns_eof;
                    continue;
                }
                st_ = st::rows;
                if (mode_ == mode::stream) {
                    stream_ = stream_state::rows;
                    return finish();
                }
                continue;
            }
            case st::columns_eof: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                ok_info ok;
                if (!is_eof_packet(p) || !parse_eof(p, ok))
                    return fail(error_kind::protocol, errc::protocol_error, "expected EOF after column definitions",
                                false);
                set_status(ok.status);
                st_ = st::rows;
                if (mode_ == mode::stream) {
                    stream_ = stream_state::rows;
                    return finish();
                }
                continue;
            }
            case st::rows: {
                for (;;) {
                    // A streamed batch holds views into the read buffer: once it has rows,
                    // take only what is already buffered, so the buffer does not move.
                    const bool fill = !(mode_ == mode::stream && batch_rows_ > 0);
                    if (!take(p, fill)) {
                        if (op_ == op::none) return next_action::done;
                        if (!fill) return finish();
                        return wait_input();
                    }
                    if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty row packet", false);
                    if (p[0] == 0xFF) return fail_server(p);
                    if (is_terminator(p)) {
                        ok_info ok;
                        bool good = (caps_ & cap::deprecate_eof) ? read_ok(p, ok)
                                                                 : parse_eof(p, ok);
                        if (!good)
                            // Long enough for an 8-byte field length: a row whose first
                            // field claims more bytes than the packet holds.
                            return fail(error_kind::protocol, errc::protocol_error,
                                        p.size() > 8 ? "malformed row: a field is longer than its packet"
                                                     : "malformed end-of-rows packet",
                                        false);
                        set_status(ok.status);
                        if (mode_ != mode::discard) detail::result_builder::set_ok(*cur_, ok);
                        if (mode_ == mode::stream) {
                            stream_ = stream_state::set_done;
                            return finish();
                        }
                        if (status_ & server_status::more_results_exist) break;
                        stream_ = stream_state::idle;
                        return finish();
                    }
                    bool good = true;
                    if (mode_ == mode::buffered) {
                        good = binary_rows_ ? detail::result_builder::add_binary_row(*cur_, p)
                                            : detail::result_builder::add_text_row(*cur_, p);
                    } else if (mode_ == mode::stream) {
                        good = binary_rows_ ? parse_binary_row(p, stream_set_.columns(), reader_.base(), batch_fields_)
                                            : parse_text_row(p, ncols_, reader_.base(), batch_fields_);
                        ++batch_rows_;
                    }
                    if (!good) return fail(error_kind::protocol, errc::protocol_error, "malformed row", false);
                }
                st_ = st::first;
                continue;
            }
            case st::infile_send:
            case st::infile_ack: {
                next_action a;
                if (!step_infile(a)) return a;
                continue;  // the LOAD DATA's result, and what follows it
            }
            default: return fail(error_kind::protocol, errc::protocol_error, "bad query state", false);
        }
    }
}

}  // namespace ambisql::proto
