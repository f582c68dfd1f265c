#pragma once
// Parsers and builders for individual protocol messages. Pure functions over bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ambisql/resultset.hpp"
#include "ambisql/row.hpp"
#include "ambisql/value.hpp"
#include "proto/wire.hpp"

namespace ambisql::proto {

namespace cap {
inline constexpr std::uint64_t long_password = 1;  // CLIENT_MYSQL on MariaDB
inline constexpr std::uint64_t found_rows = 2;
inline constexpr std::uint64_t long_flag = 4;
inline constexpr std::uint64_t connect_with_db = 8;
inline constexpr std::uint64_t compress = 32;
inline constexpr std::uint64_t local_files = 128;
inline constexpr std::uint64_t protocol_41 = 1 << 9;
inline constexpr std::uint64_t ssl = 1 << 11;
inline constexpr std::uint64_t transactions = 1 << 13;
inline constexpr std::uint64_t secure_connection = 1 << 15;
inline constexpr std::uint64_t multi_statements = 1 << 16;
inline constexpr std::uint64_t multi_results = 1 << 17;
inline constexpr std::uint64_t ps_multi_results = 1 << 18;
inline constexpr std::uint64_t plugin_auth = 1 << 19;
inline constexpr std::uint64_t connect_attrs = 1 << 20;
inline constexpr std::uint64_t plugin_auth_lenenc = 1 << 21;
inline constexpr std::uint64_t session_track = 1 << 23;
inline constexpr std::uint64_t deprecate_eof = 1 << 24;
// MariaDB extended capabilities (sent in the handshake's filler bytes).
inline constexpr std::uint64_t mariadb_progress = 1ull << 32;
inline constexpr std::uint64_t mariadb_stmt_bulk = 1ull << 34;
inline constexpr std::uint64_t mariadb_extended_metadata = 1ull << 35;
inline constexpr std::uint64_t mariadb_cache_metadata = 1ull << 36;
}  // namespace cap

namespace command {
inline constexpr std::uint8_t quit = 0x01;
inline constexpr std::uint8_t init_db = 0x02;
inline constexpr std::uint8_t query = 0x03;
inline constexpr std::uint8_t ping = 0x0E;
inline constexpr std::uint8_t stmt_prepare = 0x16;
inline constexpr std::uint8_t stmt_execute = 0x17;
inline constexpr std::uint8_t stmt_send_long_data = 0x18;
inline constexpr std::uint8_t stmt_close = 0x19;
inline constexpr std::uint8_t stmt_reset = 0x1A;
inline constexpr std::uint8_t reset_connection = 0x1F;
}  // namespace command

// The server's initial handshake (protocol v10).
struct server_handshake {
    std::uint8_t protocol_version = 0;
    std::string server_version;
    std::uint32_t connection_id = 0;
    std::uint64_t capabilities = 0;  // includes MariaDB extended bits
    std::uint8_t charset = 0;
    std::uint16_t status = 0;
    std::string scramble;  // 20 bytes for the usual plugins
    std::string auth_plugin;
    bool is_mariadb = false;
};
bool parse_handshake(byte_span payload, server_handshake& out) noexcept;

struct err_packet {
    std::uint16_t code = 0;
    std::string_view sqlstate;
    std::string_view message;
};
// payload[0] must be 0xFF.
bool parse_err(byte_span payload, err_packet& out) noexcept;

// An OK packet (header 0x00, or 0xFE as a DEPRECATE_EOF terminator).
// Session state the server reported in an OK packet (CLIENT_SESSION_TRACK).
struct session_changes {
    bool charset_changed = false;
    std::string charset;  // character_set_client
    bool schema_changed = false;
    std::string schema;
    bool tracked_changed = false;  // session_track_system_variables itself was reported
    std::string tracked;           // its new value: the variables the server reports
};
// With session_track, the info is length-encoded and, when the status says
// SESSION_STATE_CHANGED, the changes follow (reported into *changes when given).
bool parse_ok(byte_span payload, bool session_track, ok_info& out, session_changes* changes = nullptr) noexcept;
// An EOF packet (header 0xFE, 5 bytes).
bool parse_eof(byte_span payload, ok_info& out) noexcept;

// Is this packet an EOF/OK terminator rather than a row? A row can start with 0xFE too
// (an 8-byte length prefix), but then it is far longer than any terminator.
inline bool is_terminator(byte_span payload) noexcept {
    return !payload.empty() && payload[0] == 0xFE && payload.size() < 0xFFFFFF;
}
inline bool is_eof_packet(byte_span payload) noexcept {
    return !payload.empty() && payload[0] == 0xFE && payload.size() <= 5;
}

// Column definition 41: fills `out` with views into `payload`.
bool parse_column(byte_span payload, column& out) noexcept;

// Splits a text row into fields (offsets relative to `base`). Appends exactly n refs.
bool parse_text_row(byte_span payload, std::size_t n, const std::uint8_t* base,
                    std::vector<detail::field_ref>& out);

// The client's handshake response (or its first 32 bytes as an SSL request).
struct client_hello {
    std::uint64_t capabilities = 0;  // includes MariaDB extended bits
    std::uint32_t max_packet = 1u << 24;
    std::uint8_t collation = 45;
    std::string_view user;
    std::string_view auth_response;
    std::string_view database;
    std::string_view auth_plugin;
    const std::vector<std::pair<std::string, std::string>>* attributes = nullptr;
};
void write_ssl_request(std::vector<std::uint8_t>& out, const client_hello& h);
void write_handshake_response(std::vector<std::uint8_t>& out, const client_hello& h);

// Collation id for a character set name (its default collation); 0 when unknown.
std::uint8_t collation_for_charset(std::string_view charset) noexcept;

}  // namespace ambisql::proto
