#include "io/channel.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>

namespace ambisql::detail {

namespace {
// Where honoured LOCAL INFILE requests get their data: the application's handler, or the
// allowed files, read here (in the I/O layer; the core never touches files) 1 MiB at a
// time as the socket takes them.
proto::session::infile_source infile_source_for(const config& cfg) {
    if (cfg.local_infile_handler) {
        return [h = cfg.local_infile_handler](std::string_view file, proto::session::infile_reader& next,
                                              std::string& why) {
            auto data = std::make_shared<std::string>();
            if (!h(file, *data)) {
                why = "the application refused LOCAL INFILE '" + std::string(file) + "'";
                return false;
            }
            next = [data](std::string& chunk, std::string&) {  // all of it, then the end
                chunk.swap(*data);
                data->clear();
                return true;
            };
            return true;
        };
    }
    if (!cfg.local_infile_allow.empty()) {
        return [allow = cfg.local_infile_allow](std::string_view file, proto::session::infile_reader& next,
                                                std::string& why) {
            if (std::find(allow.begin(), allow.end(), file) == allow.end()) {
                why = "LOCAL INFILE '" + std::string(file) + "' is not in local_infile_allow";
                return false;
            }
            auto in = std::make_shared<std::ifstream>(std::string(file), std::ios::binary);
            if (!*in) {
                why = "cannot read LOCAL INFILE '" + std::string(file) + "'";
                return false;
            }
            next = [in](std::string& chunk, std::string& err) {
                constexpr std::size_t piece = 1 << 20;
                chunk.resize(piece);
                in->read(chunk.data(), static_cast<std::streamsize>(piece));
                chunk.resize(static_cast<std::size_t>(in->gcount()));
                if (in->bad()) {
                    err = "read error";
                    return false;
                }
                return true;
            };
            return true;
        };
    }
    return {};
}
}  // namespace

void channel::io_failed(std::error_code ec, const char* what, std::chrono::milliseconds timeout) {
    if (ec == errc::timeout) {
        sess.on_io_error(error_kind::network, errc::timeout,
                         std::string(what) + " timed out after " + std::to_string(timeout.count()) + " ms");
    } else if (ec.category() == client_category()) {
        sess.on_io_error(error_kind::network, static_cast<errc>(ec.value()),
                         std::string(what) + " failed: " + ec.message());
    } else {
        sess.on_io_error(error_kind::network, errc::io_error, std::string(what) + " failed: " + ec.message());
    }
}

void channel::connect_failed(std::error_code ec, std::string msg) {
    diag.clear();
    diag.kind = ec == errc::bad_config ? error_kind::client : error_kind::network;  // (a bad address or path)
    diag.code = ec;
    diag.message = std::move(msg);
    diag.connection_usable = false;
    diag.sent = {true, false, false, false, cfg.galera_check};  // nothing of the work went out
    sock.close();
}

bool channel::start_handshake() {
    const bool unix_socket = !cfg.unix_socket.empty();
    sess.set_infile_source(infile_source_for(cfg));
    if (!sess.start_connect(cfg, unix_socket ? std::string_view("localhost") : std::string_view(cfg.host),
                            unix_socket)) {
        diag = sess.diag();
        sock.close();
        return false;
    }
    return true;
}

void channel::close() noexcept {
    if (sock.is_open() && sess.connected() && !sess.in_progress() && sess.start_quit()) {
        // Best effort: say goodbye without waiting.
        if (sess.resume() == proto::next_action::write) sock.send_nowait(sess.write_buffer());
    }
    sock.close();
    sess.close();
}

}  // namespace ambisql::detail
