// Session state the server reports: OK packets with tracked changes (character set,
// schema), resets, and changes made behind the driver's back without tracking.
#include "proto/session.hpp"

#include <algorithm>
#include <atomic>

#include <cctype>

#include "proto/session_detail.hpp"
#include "proto/untracked.hpp"

namespace ambisql::proto {

namespace {
std::atomic<std::uint64_t> epochs{0};
}  // namespace

// Statements die with the session that prepared them: each connect and reset starts a
// new one, numbered across every connection of the process.
void session::new_epoch() noexcept { epoch_ = epochs.fetch_add(1, std::memory_order_relaxed) + 1; }

bool session::own_statement(const statement& st) {
    if (st.session == 0 || st.session == epoch_) return true;
    fail(error_kind::client, errc::stale_handle,
         "this statement was prepared on another connection, or before this one reconnected or was reset; prepare it "
         "again",
         true);
    return false;
}

bool session::read_ok(byte_span p, ok_info& ok) {
    const bool tracking = (caps_ & cap::session_track) != 0;
    session_changes ch;
    if (!parse_ok(p, tracking, ok, &ch)) return false;
    if (ok.last_insert_id != 0) state_changed_ = true;  // LAST_INSERT_ID(), which the tracker does not report
    if (ch.tracked_changed) {  // the list of reported variables: is character_set_client in it?
        bool has = false;
        for (std::size_t at = 0; at <= ch.tracked.size() && !has;) {
            std::size_t end = std::min(ch.tracked.find(',', at), ch.tracked.size());
            std::string_view name = std::string_view(ch.tracked).substr(at, end - at);
            has = name == "character_set_client" || name == "*";
            at = end + 1;
        }
        charset_tracked_ = has;
        track_confirmed_ = true;
    }
    if (ch.charset_changed) set_charset(ch.charset);
    if (ch.schema_changed) schema_ = ch.schema;
    if (!pending_charset_.empty()) {  // start_set_charset's statement succeeded
        set_charset(std::move(pending_charset_));
        pending_charset_.clear();
    }
    return true;
}

void session::set_charset(std::string cs) {
    charset_ = std::move(cs);
    mb_ = multibyte_of(charset_);
    charset_unknown_ = false;
}

void session::reset_session_state() {
    set_charset(handshake_charset_);
    pending_charset_.clear();
}

// The server reports changes of the variables in session_track_system_variables, which a
// DBA or the application may have left character_set_client out of. After connecting and
// after every reset (which restores the global list), the session adds it, and the list
// itself: the answer then reports the new list, which proves the server's tracker works
// for this session (MariaDB's stays off, saying nothing, in a session that began with an
// empty list), and so will any later change of the list that keeps it in.
namespace {
constexpr std::string_view track_sql =
    "SET SESSION session_track_system_variables = CONCAT_WS(',', "
    "NULLIF(@@session.session_track_system_variables, ''), 'character_set_client', 'session_track_system_variables')";
}  // namespace

void session::write_track_request() {
    std::size_t s = out_.size();
    begin_command(command::query);
    out_.insert(out_.end(), track_sql.begin(), track_sql.end());
    end_packet(out_, s, seq_);
    track_pending_ = true;
    charset_tracked_ = false;
}

void session::read_track_reply(byte_span p) {
    track_pending_ = false;
    ok_info ok;
    // An error (a server without the variable), or an OK that does not report the new
    // list, leaves the charset untracked: every statement of the application then makes
    // it unknown (note_statement).
    track_confirmed_ = false;
    if (!p.empty() && p[0] == 0x00 && read_ok(p, ok)) set_status(ok.status);
    if (!track_confirmed_) charset_tracked_ = false;
}

// Called with the text of every statement the application sends or prepares: one that
// may leave session state the server does not report (untracked.hpp) counts as a change
// of the session. (A prepared one is flagged when prepared: the reset its borrower's
// return then brings also drops it, so no later borrower can run it unflagged.)
void session::note_untracked(std::string_view sql) noexcept {
    if (!state_changed_ && may_leave_untracked_state(sql, !(status_ & server_status::no_backslash_escapes)))
        state_changed_ = true;
}

// Called with every statement the application sends as text, before it goes out. Where
// the server does not report character_set_client's changes, any statement may have made
// one (SET NAMES, a stored routine, a prepared SET): the character set is unknown after
// it, and text is not interpolated until the driver learns it again (start_set_charset,
// a reset, a reconnect). Where it does, a statement that changes what it reports
// (session_track_system_variables: the server does not report the change that drops
// character_set_client from the list) makes it unknown the same way.
void session::note_statement(std::string_view sql) {
    note_untracked(sql);
    // COMMIT (or XA COMMIT) in the command: a failure now leaves its outcome unknown.
    {
        std::size_t i = 0;
        auto word = [&](std::string_view w) {
            while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
            if (sql.size() - i < w.size()) return false;
            for (std::size_t k = 0; k < w.size(); ++k)
                if (std::toupper(static_cast<unsigned char>(sql[i + k])) != w[k]) return false;
            const std::size_t end = i + w.size();
            if (end < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[end])) || sql[end] == '_')) return false;
            i = end;
            return true;
        };
        if (word("COMMIT") || (i = 0, word("XA") && word("COMMIT"))) cmd_commit_ = true;
    }
    if (charset_tracked_) {
        // "session_track_system_variables" in any case (not the other trackers' switches,
        // which the pool sets): a scan for '_' then the letters around it.
        constexpr std::string_view before = "session", after = "_track_system_variables";
        bool mentioned = false;
        for (std::size_t at = sql.find('_'); at != std::string_view::npos && !mentioned; at = sql.find('_', at + 1)) {
            if (at < before.size() || sql.size() - at < after.size()) continue;
            auto same = [&](std::string_view word, std::size_t from) {
                for (std::size_t k = 0; k < word.size(); ++k)
                    if (std::tolower(static_cast<unsigned char>(sql[from + k])) != word[k]) return false;
                return true;
            };
            mentioned = same(after, at) && same(before, at - before.size());
        }
        if (!mentioned) return;
        charset_tracked_ = false;
    }
    charset_unknown_ = true;
    charset_.clear();
    mb_ = multibyte::none;
}

}  // namespace ambisql::proto
