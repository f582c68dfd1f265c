#include "io/channel.hpp"

namespace ambisql::detail {

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
    diag.kind = error_kind::network;
    diag.code = ec;
    diag.message = std::move(msg);
    diag.connection_usable = false;
    sock.close();
}

bool channel::start_handshake() {
    const bool unix_socket = !cfg.unix_socket.empty();
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
