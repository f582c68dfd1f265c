#pragma once
// Errors: every failure is a std::error_code plus diagnostics that keep what the
// client says apart from what the server said. Throwing calls wrap both in ambisql::error.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

namespace ambisql {

// Where a failure came from.
enum class error_kind : std::uint8_t {
    none,
    server,    // an ERR packet answering a command; the connection stays usable
    client,    // misuse or a refused request; nothing was sent or the stream is intact
    protocol,  // malformed or unexpected bytes from the server
    network,   // the socket failed, closed, or timed out
    tls,       // TLS negotiation or record failure
    auth,      // the server refused the login, or the client refused an auth request
};

const char* to_string(error_kind k) noexcept;

// Client-side error codes (category "ambisql"). Server errors use server_category(),
// with the server's error number as the value.
enum class errc {
    operation_in_progress = 1,
    not_connected,
    connection_broken,
    protocol_error,
    sequence_mismatch,
    packet_too_large,
    unsupported_server,
    auth_plugin_unsupported,
    auth_switch_refused,
    auth_insecure_cleartext,
    tls_not_offered,
    tls_failed,
    connect_failed,
    host_not_found,
    timeout,
    connection_closed,
    io_error,
    bad_url,
    bad_config,
    placeholder_mismatch,
    charset_unknown,  // the character set in force is not known: text is not interpolated
    bad_value,
    value_type_mismatch,
    value_out_of_range,
    local_infile_refused,
    wait_failed,
    result_pending,
    cancelled,
    bad_text,      // text that is not valid in the connection's character set (a lone lead byte)
    stale_handle,  // a statement or row_stream used on a connection (or session) it does not belong to
    option_file_unreadable,  // config_builder::option_file()
};

const std::error_category& client_category() noexcept;
const std::error_category& server_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// What went wrong, in full.
struct diagnostics {
    error_kind kind = error_kind::none;
    std::error_code code;          // client_category() or server_category()
    std::uint16_t server_code = 0; // the server's error number (server / auth kinds)
    std::string sqlstate;          // five characters when the server sent one
    std::string message;           // the client's text, or the server's text as sent
    bool connection_usable = true; // false: the connection must be closed
    // What the connection had sent when the failure came, as it recorded it (classify()
    // decides retries by it; known = false where no connection recorded anything).
    struct sent_record {
        bool known = false;
        bool statements = false;      // bytes of the failing command had gone out
        bool in_transaction = false;  // it ran inside a transaction (open, or autocommit off)
        bool commit = false;          // it was, or contained, a COMMIT
        bool galera = false;          // to a Galera node (the connection checks for one)
    } sent;

    explicit operator bool() const noexcept { return kind != error_kind::none; }
    void clear() noexcept {
        kind = error_kind::none;
        code.clear();
        server_code = 0;
        sqlstate.clear();
        message.clear();
        connection_usable = true;
        sent = {};
    }
    // "kind error [code] (SQLSTATE): message"
    std::string to_string() const;
};

class error : public std::runtime_error {
public:
    explicit error(diagnostics d);
    const diagnostics& diag() const noexcept { return diag_; }
    error_kind kind() const noexcept { return diag_.kind; }
    std::error_code code() const noexcept { return diag_.code; }
    std::uint16_t server_code() const noexcept { return diag_.server_code; }
    const std::string& sqlstate() const noexcept { return diag_.sqlstate; }
    bool connection_usable() const noexcept { return diag_.connection_usable; }

private:
    diagnostics diag_;
};

}  // namespace ambisql

template <>
struct std::is_error_code_enum<ambisql::errc> : std::true_type {};
