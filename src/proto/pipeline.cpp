// Pipelines: every stage's request planned and sent ahead, the responses read in order.
#include "proto/session.hpp"

#include <algorithm>
#include <cctype>

#include "proto/binary.hpp"
#include "proto/pipeline_access.hpp"
#include "proto/result_builder.hpp"
#include "proto/session_detail.hpp"

namespace ambisql::proto {

namespace {
// How a stage runs (pipe_plan_[stage]).
enum plan : std::uint8_t { p_unplanned, p_failed, p_text, p_binary, p_prepare_execute, p_prepare, p_simple };
}  // namespace

namespace {
// SQL that may change how values must be escaped (character set, sql_mode's
// NO_BACKSLASH_ESCAPES), or run SQL that does: interpolated stages after it in a pipeline
// are formatted once it has been answered. False positives cost only that wait.
bool may_change_escaping(std::string_view sql) {
    auto same = [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; };
    for (std::string_view w : {"NAMES", "CHARACTER", "CHARSET", "SQL_MODE", "EXECUTE"})
        if (std::search(sql.begin(), sql.end(), w.begin(), w.end(), same) != sql.end()) return true;
    return false;
}
}  // namespace

bool session::start_pipeline(pipeline& pl) {
    if (!can_start()) return false;
    for (std::size_t i = 0; i < pl.size(); ++i) {
        detail::pipeline_access::view(pl[i]).diag_.clear();
        detail::pipeline_access::clear_result(pl[i]);
    }
    pipe_ = &pl;
    pipe_plan_.assign(pl.size(), p_unplanned);
    pipe_buf_.clear();
    pipe_ends_.clear();
    pipe_sent_ = 0;
    plan_stages(0);
    start_op(op::pipeline, st::first);
    stage_ = 0;
    if (!setup_stage()) op_ = op::none;  // nothing was sent
    return true;
}

// Serialises the requests of stages `from`... into pipe_buf_: up to the end, or up to an
// interpolated stage behind one that may change the escaping rules (a SET NAMES, an
// sql_mode change, a reset): that one and the rest are planned when every stage before
// it has been answered, so their values are escaped by the rules then in force.
void session::plan_stages(std::size_t from) {
    pipeline& pl = *pipe_;
    const std::size_t base = out_.size();  // (pending closes before it go out at once)
    // The SQL of the statement prepared last in this plan: a later stage executing the
    // same SQL uses id 0xFFFFFFFF instead of preparing it again.
    std::string_view last_prepared;
    bool have_last = false;
    bool rules_may_change = false;
    std::size_t i = from;
    for (; i < pl.size(); ++i) {
        auto s = detail::pipeline_access::view(pl[i]);
        std::uint8_t& plan = pipe_plan_[i];
        if (s.kind_ == pipeline::kind::query_args && rules_may_change) break;
        auto refuse = [&](errc code, std::string msg) {
            plan = p_failed;
            s.diag_.kind = error_kind::client;
            s.diag_.code = code;
            s.diag_.message = std::move(msg);
        };
        auto simple = [&](std::uint8_t cmd, std::string_view arg) {
            std::size_t at = out_.size();
            begin_command(cmd);
            out_.insert(out_.end(), arg.begin(), arg.end());
            end_packet(out_, at, seq_);
            plan = p_simple;
        };
        switch (s.kind_) {
            case pipeline::kind::query_args:
                sql_scratch_.clear();
                if (auto ec = format_sql(sql_scratch_, s.sql_, s.args_.args, escaping_rules())) {
                    refuse(static_cast<errc>(ec.value()), ec.message());
                    break;
                }
                note_statement(sql_scratch_);
                rules_may_change |= may_change_escaping(sql_scratch_);
                simple(command::query, sql_scratch_);
                plan = p_text;
                break;
            case pipeline::kind::query:
                note_statement(s.sql_);
                rules_may_change |= may_change_escaping(s.sql_);
                simple(command::query, s.sql_);
                plan = p_text;
                break;
            case pipeline::kind::execute:
            case pipeline::kind::execute_statement: {
                statement st = s.st_;
                bool cached = s.kind_ == pipeline::kind::execute_statement;
                rules_may_change |= may_change_escaping(s.sql_);
                if (!cached) {
                    if (auto it = cache_index_.find(s.sql_); it != cache_index_.end()) {
                        cache_.splice(cache_.begin(), cache_, it->second);
                        st = it->second->second;
                        cached = true;
                    }
                }
                const bool same_as_last = hs_.is_mariadb && have_last && last_prepared == s.sql_;
                if (st.session != 0 && st.session != epoch_) {
                    refuse(errc::stale_handle, "this statement was prepared on another connection, or before this one "
                                               "reconnected or was reset; prepare it again");
                    break;
                }
                if (cached && s.args_.args.size() != st.params) {
                    refuse(errc::placeholder_mismatch, param_count_message(st.params, s.args_.args.size()));
                    break;
                }
                if (cached || same_as_last) {
                    s.st_.id = cached ? st.id : last_prepared_statement;  // whose answer the stage reads
                    if (!append_execute(s.st_.id, s.args_.args))
                        refuse(errc::bad_value, unbindable);
                    else
                        plan = p_binary;
                    break;
                }
                if (!hs_.is_mariadb) {
                    refuse(errc::bad_value,
                           "this server cannot prepare and execute in one round trip: execute the statement once "
                           "outside the pipeline so that it is cached");
                    break;
                }
                exec_payload_.clear();
                if (write_execute(exec_payload_, last_prepared_statement, s.args_.args)) {
                    refuse(errc::bad_value, unbindable);
                    break;
                }
                evict_for_insert();
                write_pending_closes();
                note_untracked(s.sql_);
                simple(command::stmt_prepare, s.sql_);
                std::uint8_t seq = 0;
                std::size_t at = begin_packet(out_);
                out_.insert(out_.end(), exec_payload_.begin(), exec_payload_.end());
                end_packet(out_, at, seq);
                plan = p_prepare_execute;
                last_prepared = s.sql_;
                have_last = true;
                break;
            }
            case pipeline::kind::prepare:
                note_untracked(s.sql_);
                simple(command::stmt_prepare, s.sql_);
                plan = p_prepare;
                have_last = false;
                break;
            case pipeline::kind::ping: simple(command::ping, {}); break;
            case pipeline::kind::select_db: simple(command::init_db, s.sql_); break;
            case pipeline::kind::reset_connection:
                simple(command::reset_connection, {});
                if (caps_ & cap::session_track) write_track_request();  // answered within the stage
                // The server drops every statement: later stages prepare what they
                // execute (none is cached, none "just prepared"); what the server held
                // is forgotten when the reset is answered (setup_stage).
                cache_.clear();
                cache_index_.clear();
                pending_closes_.clear();
                have_last = false;
                rules_may_change = true;  // the handshake's character set, the global sql_mode
                break;
        }
        pipe_ends_.push_back(pipe_buf_.size() + out_.size() - base);
    }
    pipe_buf_.insert(pipe_buf_.end(), out_.begin() + static_cast<std::ptrdiff_t>(base), out_.end());
    out_.resize(base);
    pipe_planned_ = i;
}

bool session::setup_stage() {
    for (;;) {
        if (stage_ == pipe_planned_ && stage_ < pipe_->size()) plan_stages(stage_);  // every earlier stage answered
        if (stage_ == pipe_->size() || pipe_plan_[stage_] != p_failed) break;
        ++stage_;
    }
    if (stage_ == pipe_->size()) return false;
    auto s = detail::pipeline_access::view((*pipe_)[stage_]);
    const std::uint8_t plan = pipe_plan_[stage_];
    new_exchange(1);  // each response is numbered from its own request
    diag_.clear();
    deferred_.clear();
    switch (plan) {
        case p_text:
        case p_binary:
            sub_op_ = op::query;
            st_ = st::first;
            begin_results(&s.res_, plan == p_binary);
            // An execute of "the statement just prepared" answers for the last prepare read.
            exec_stmt_ = s.st_.id == last_prepared_statement ? prep_.id : s.st_.id;
            break;
        case p_prepare_execute:
            sub_op_ = op::prepare;
            st_ = st::prep_ok;
            begin_results(&s.res_, true);
            prep_out_ = nullptr;
            prep_sql_ = s.sql_;
            then_execute_ = cache_result_ = exec_pipelined_ = true;
            then_bulk_ = false;
            break;
        case p_prepare:
            sub_op_ = op::prepare;
            st_ = st::prep_ok;
            prep_out_ = &s.st_;
            then_execute_ = cache_result_ = exec_pipelined_ = then_bulk_ = false;
            break;
        default:
            sub_op_ = op::simple;
            st_ = st::simple_reply;
            // A reset's answer, as outside a pipeline, forgets every statement (those the
            // earlier stages prepared too) and restores the handshake's session state.
            simple_cmd_ = s.kind_ == pipeline::kind::reset_connection ? command::reset_connection : 0;
            break;
    }
    return true;
}

// Hands the next requests to out_: everything up to the end of the stage being answered,
// and up to pipe_window bytes beyond its start.
void session::feed_pipeline() {
    constexpr std::size_t pipe_window = 64 * 1024;
    if (stage_ >= pipe_ends_.size() || pipe_sent_ == pipe_buf_.size()) return;
    const std::size_t start = stage_ == 0 ? 0 : pipe_ends_[stage_ - 1];
    const std::size_t upto = std::min(pipe_buf_.size(), std::max(pipe_ends_[stage_], start + pipe_window));
    if (upto <= pipe_sent_) return;
    out_.insert(out_.end(), pipe_buf_.begin() + static_cast<std::ptrdiff_t>(pipe_sent_),
                pipe_buf_.begin() + static_cast<std::ptrdiff_t>(upto));
    pipe_sent_ = upto;
}

next_action session::step_pipeline() {
    for (;;) {
        feed_pipeline();
        op_ = sub_op_;
        next_action a = sub_op_ == op::query ? step_query() : sub_op_ == op::prepare ? step_prepare() : step_simple();
        if (op_ != op::none) {  // the stage waits for bytes (or sends some)
            sub_op_ = op_;      // a prepare + execute stage moves on to the execute's response
            op_ = op::pipeline;
            return a;
        }
        if (stage_ == pipe_->size()) return end_pipeline();  // the stages' closes went out
        detail::pipeline_access::view((*pipe_)[stage_]).diag_ = diag_;
        if (broken_) {
            // The connection is gone: so are the answers of the stages after this one.
            for (std::size_t i = stage_ + 1; i < pipe_->size(); ++i)
                if (pipe_plan_[i] != p_failed) detail::pipeline_access::view((*pipe_)[i]).diag_ = diag_;
            pipe_ = nullptr;
            return next_action::done;
        }
        ++stage_;
        if (!setup_stage()) {
            diag_.clear();
            if (!pending_closes_.empty()) {
                // Statements the stages evicted, or prepared twice: closed before the
                // pipeline counts as done, not with the next command.
                write_pending_closes();
                sub_op_ = op::simple;
                st_ = st::flush_only;
                continue;
            }
            return end_pipeline();
        }
    }
}

next_action session::end_pipeline() {
    op_ = op::none;
    if (pipe_ == &bulk_pipe_) {  // execute_many without bulk operations: sum up
        std::uint64_t total = 0;
        const diagnostics* first_error = nullptr;
        for (std::size_t i = 0; i < bulk_pipe_.size(); ++i) {
            if (!bulk_pipe_[i].ok()) {
                if (!first_error) first_error = &bulk_pipe_[i].error();
            } else {
                total += bulk_pipe_[i].result().affected_rows();
            }
        }
        ok_info ok;
        ok.affected_rows = total;
        ok.status = status_;
        if (bulk_out_) detail::result_builder::set_ok(detail::result_builder::add(*bulk_out_), ok);
        if (first_error) diag_ = *first_error;
    }
    pipe_ = nullptr;
    return next_action::done;
}

}  // namespace ambisql::proto
