// Session state the server reports: OK packets with tracked changes (character set,
// schema), resets, and changes made behind the driver's back without tracking.
#include "proto/session.hpp"

#include <atomic>

#include <cctype>

#include "proto/session_detail.hpp"

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
    if (ch.charset_changed) {
        charset_ = ch.charset;
        unsafe_charset_ = is_unsafe_charset(ch.charset);
        charset_unknown_ = false;
    }
    if (ch.schema_changed) schema_ = ch.schema;
    return true;
}

void session::reset_session_state() {
    charset_ = cfg_ ? cfg_->charset : std::string();
    unsafe_charset_ = is_unsafe_charset(charset_);
    charset_unknown_ = false;
}

// Without session tracking the driver cannot see `SET NAMES` and friends take effect:
// after SQL that may change the character set, interpolation is refused (until a reset
// or a new connection) rather than done with rules that may be wrong.
void session::note_untracked_changes(std::string_view sql) {
    if (caps_ & cap::session_track) return;
    std::string upper;  // upper case, blanks collapsed
    upper.reserve(sql.size());
    for (char c : sql) {
        const bool blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (blank) {
            if (!upper.empty() && upper.back() != ' ') upper += ' ';
        } else {
            upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
    }
    auto statement_start = [&](std::size_t at) {  // at the start of a statement
        while (at > 0 && upper[at - 1] == ' ') --at;
        return at == 0 || upper[at - 1] == ';';
    };
    bool changes = upper.find("CHARACTER_SET_CLIENT") != std::string::npos;
    for (std::string_view needle : {"SET NAMES", "SET CHARACTER SET", "SET CHARSET"}) {
        for (std::size_t at = upper.find(needle); !changes && at != std::string::npos; at = upper.find(needle, at + 1))
            changes = statement_start(at);
    }
    if (changes) {
        charset_unknown_ = true;
        charset_.clear();
    }
}

}  // namespace ambisql::proto
