#pragma once
// What every driver of the core holds: the session, its socket, its settings, and the
// last failure. Each I/O model adds only its own loop.
#include <chrono>
#include <string>
#include <system_error>

#include "ambisql/config.hpp"
#include "ambisql/error.hpp"
#include "io/socket.hpp"
#include "proto/session.hpp"

namespace ambisql::detail {

struct channel {
    proto::session sess;
    io::socket sock;
    config cfg;
    diagnostics diag;

    // Reports a failed send/receive/wait to the session (which then fails the operation).
    void io_failed(std::error_code ec, const char* what, std::chrono::milliseconds timeout);
    // Fails with a connect error (nothing reached the protocol yet).
    void connect_failed(std::error_code ec, std::string msg);
    // Starts the handshake once the socket is connected.
    bool start_handshake();
    // Sends COM_QUIT without waiting, then closes.
    void close() noexcept;
};

}  // namespace ambisql::detail
