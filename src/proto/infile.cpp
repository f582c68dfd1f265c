// LOAD DATA LOCAL INFILE: which requests are honoured, and streaming the file.
#include "proto/session.hpp"

#include <cctype>

#include "proto/session_detail.hpp"

namespace ambisql::proto {

// The file name of a `LOAD DATA [LOW_PRIORITY | CONCURRENT] LOCAL INFILE 'name'`
// statement at the start of sql (after blanks); false when sql is no such statement.
bool load_data_local_file(std::string_view sql, std::string& file) {
    std::size_t i = 0;
    auto blanks = [&] {
        while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r')) ++i;
    };
    auto word = [&](std::string_view w) {
        blanks();
        if (sql.size() - i < w.size()) return false;
        for (std::size_t k = 0; k < w.size(); ++k)
            if (std::toupper(static_cast<unsigned char>(sql[i + k])) != w[k]) return false;
        if (i + w.size() < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i + w.size()])) || sql[i + w.size()] == '_'))
            return false;
        i += w.size();
        return true;
    };
    if (!word("LOAD") || !word("DATA")) return false;
    if (!word("LOW_PRIORITY")) (void)word("CONCURRENT");
    if (!word("LOCAL") || !word("INFILE")) return false;
    blanks();
    if (i >= sql.size() || (sql[i] != '\'' && sql[i] != '"')) return false;
    const char q = sql[i++];
    file.clear();
    while (i < sql.size()) {
        char c = sql[i++];
        if (c == '\\' && i < sql.size()) {
            char e = sql[i++];
            switch (e) {
                case 'n': file += '\n'; break;
                case 't': file += '\t'; break;
                case 'r': file += '\r'; break;
                case '0': file += '\0'; break;
                case 'Z': file += '\x1A'; break;
                default: file += e; break;
            }
        } else if (c == q) {
            if (i < sql.size() && sql[i] == q) {
                file += q;
                ++i;
            } else {
                return true;
            }
        } else {
            file += c;
        }
    }
    return false;  // unterminated
}

// The server asked for a file (0xFB + name): honoured once, for the file our statement
// named; otherwise answered with an empty file and reported as refused.
void session::on_infile_request(byte_span p) {
    std::string_view name(reinterpret_cast<const char*>(p.data() + 1), p.size() - 1);
    std::string why = "the server asked for a LOCAL INFILE file, which this connection does not allow";
    bool honour = false;
    infile_next_ = nullptr;
    if (infile_armed_ && name == infile_expected_) {
        honour = infile_source_(name, infile_next_, why) && infile_next_;
    } else if (infile_source_) {
        why = "the server asked for LOCAL INFILE '" + std::string(name) +
              "', which is not the file of a LOAD DATA LOCAL statement just sent";
    }
    infile_armed_ = false;
    infile_sent_ = honour;
    infile_name_.assign(name);
    infile_bytes_ = 0;
    if (!honour) {
        infile_next_ = nullptr;
        deferred_.clear();
        deferred_.kind = error_kind::client;
        deferred_.code = errc::local_infile_refused;
        deferred_.message = std::move(why);
    }
    st_ = st::infile_send;  // an empty file when refused
}

// Sends the file (or an empty one, when refused), then reads the server's answer.
// true: the query goes on (state first: the LOAD DATA's result and what follows);
// false: step_query returns `a`.
bool session::step_infile(next_action& a) {
    if (st_ == st::infile_send) {
        // The contents in packets of at most 1 MiB, read as the socket takes them, then an
        // empty packet.
        for (;;) {
            if (output_pending()) {
                a = next_action::write;
                return false;
            }
            if (op_ == op::none) {  // TLS failed
                a = next_action::done;
                return false;
            }
            infile_chunk_.clear();
            std::string why;
            if (infile_next_) {
                if (!infile_next_(infile_chunk_, why)) {
                    // Ending the data here would make the server keep a partial load:
                    // closing the connection makes it discard the statement.
                    infile_next_ = nullptr;
                    a = fail(error_kind::client, errc::io_error,
                             "reading LOCAL INFILE '" + infile_name_ + "' failed after " +
                                 std::to_string(infile_bytes_) + " bytes (" + why +
                                 "); the connection was closed so that the server discards the partial load",
                             false);
                    return false;
                }
                infile_bytes_ += infile_chunk_.size();
            }
            constexpr std::size_t piece = 1 << 20;
            for (std::size_t at = 0; at < infile_chunk_.size(); at += piece) {
                std::size_t s = begin_packet(out_);
                std::size_t n = std::min(piece, infile_chunk_.size() - at);
                out_.insert(out_.end(), infile_chunk_.begin() + static_cast<std::ptrdiff_t>(at),
                            infile_chunk_.begin() + static_cast<std::ptrdiff_t>(at + n));
                end_packet(out_, s, seq_);
            }
            if (!infile_chunk_.empty()) continue;
            std::size_t s = begin_packet(out_);  // the end
            end_packet(out_, s, seq_);
            infile_next_ = nullptr;
            infile_chunk_.clear();
            infile_chunk_.shrink_to_fit();
            st_ = st::infile_ack;
            break;
        }
    }
    byte_span p;
    if (!take(p)) {
        a = op_ == op::none ? next_action::done : wait_input();
        return false;
    }
    if (p.empty() || (p[0] != 0x00 && p[0] != 0xFF)) {
        a = fail(error_kind::protocol, errc::protocol_error, "unexpected reply to LOCAL INFILE data", false);
        return false;
    }
    if (p[0] == 0xFF) {
        a = fail_server(p);  // reports the refusal first, if any
        return false;
    }
    // Honoured: the LOAD DATA's own result. Refused: read what later statements answer;
    // finish() then reports the refusal.
    if (!infile_sent_) mode_ = mode::discard;
    st_ = st::first;
    return !statement_ok(p, a);
}

}  // namespace ambisql::proto
