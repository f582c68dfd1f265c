#pragma once
// Drives a proto::session from byte vectors: what the client writes is collected, what
// the "server" says is fed in. No sockets.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/session.hpp"

namespace ambisql::test {

using bytes_t = std::vector<std::uint8_t>;

inline bytes_t to_bytes(std::string_view s) { return bytes_t(s.begin(), s.end()); }

// One packet: 3-byte length, sequence id, payload.
inline bytes_t packet(std::uint8_t seq, const bytes_t& payload) {
    bytes_t out{static_cast<std::uint8_t>(payload.size()), static_cast<std::uint8_t>(payload.size() >> 8),
                static_cast<std::uint8_t>(payload.size() >> 16), seq};
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}
inline bytes_t packet(std::uint8_t seq, std::string_view payload) { return packet(seq, to_bytes(payload)); }

inline bytes_t cat(std::initializer_list<bytes_t> parts) {
    bytes_t out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

inline bytes_t lenenc_str(std::string_view s) {
    bytes_t out;
    if (s.size() < 251) {
        out.push_back(static_cast<std::uint8_t>(s.size()));
    } else {
        out.push_back(0xFC);
        out.push_back(static_cast<std::uint8_t>(s.size()));
        out.push_back(static_cast<std::uint8_t>(s.size() >> 8));
    }
    out.insert(out.end(), s.begin(), s.end());
    return out;
}

// A MariaDB 10.11-like greeting. caps: lower 32 bits; ext_caps: MariaDB's extended bits
// (capability bit 32 + i is bit i here).
bytes_t greeting(std::string_view plugin = "mysql_native_password", std::uint32_t caps = 0xF7FEF7FE,
                 std::string_view scramble = "abcdefghijklmnopqrst", std::uint32_t ext_caps = 0);
// Column definition payload.
bytes_t column_def(std::string_view name, std::uint8_t type, std::uint16_t flags = 0, std::uint16_t charset = 45);
bytes_t ok_payload(std::uint64_t affected = 0, std::uint64_t insert_id = 0, std::uint16_t status = 2,
                   std::uint8_t header = 0x00);
bytes_t eof_payload(std::uint16_t status = 2);
// An OK reporting session_track_system_variables' new value (SESSION_STATE_CHANGED), as the
// answer to the statement that makes the server track the character set.
bytes_t tracked_ok_payload(std::string_view list = "character_set_client,session_track_system_variables");
bytes_t err_payload(std::uint16_t code, std::string_view state, std::string_view msg);

// The client settings scripted sessions connect with: user "u", no TLS.
inline config scripted_config() {
    config c;
    c.user = "u";
    c.ssl = ssl_mode::disabled;
    return c;
}

class scripted {
public:
    proto::session s;
    bytes_t sent;  // everything the client wrote, in order

    // Runs until the session wants input or is done.
    proto::next_action run() {
        for (;;) {
            auto a = s.resume();
            if (a != proto::next_action::write) return a;
            auto b = s.write_buffer();
            sent.insert(sent.end(), b.begin(), b.end());
            s.on_written(b.size());
        }
    }
    // Feeds server bytes, `chunk` bytes at a time, running the session after each.
    proto::next_action feed(const bytes_t& data, std::size_t chunk = 1 << 20) {
        proto::next_action a = proto::next_action::read;
        for (std::size_t i = 0; i < data.size();) {
            auto space = s.read_buffer();
            std::size_t n = std::min({chunk, space.size(), data.size() - i});
            std::copy(data.begin() + i, data.begin() + i + n, space.begin());
            s.on_read(n);
            i += n;
            a = run();
            if (a == proto::next_action::done && i < data.size()) return a;
        }
        return a;
    }
    // Packets the client sent since the last call, split by their headers.
    std::vector<bytes_t> take_sent_packets() {
        std::vector<bytes_t> out;
        std::size_t i = 0;
        while (i + 4 <= sent.size()) {
            std::size_t len = sent[i] | (sent[i + 1] << 8) | (std::size_t(sent[i + 2]) << 16);
            out.emplace_back(sent.begin() + i + 4, sent.begin() + i + 4 + len);
            i += 4 + len;
        }
        sent.clear();
        return out;
    }
    // Decodes every value of a query's outcome: the buffered `out`, or, when streaming
    // (after `a` said done), up to four more batches of rows.
    void touch_results(const results& out, bool stream, proto::next_action a);
    // Feeds the packet that ends authentication (an OK) and, when the session then sends
    // the statement that makes the server track the character set, that statement's OK.
    proto::next_action auth_ok(const bytes_t& ok_packet);
    // A connected session (native auth, no TLS) with `caps` in the greeting.
    void connect(const config& cfg, std::uint32_t caps = 0xF7FEF7FE, std::uint32_t ext_caps = 0);
};

// The query fuzz targets: data[0] picks EOF style (bit 0), streaming (bit 1), feed piece
// size (bits 2..6) and, compressed, a long (deflated) statement (bit 7); the rest of
// `data` is the server's answer (compressed frames when `compress`), fed to a query and
// every value that arrives decoded.
void fuzz_query_response(const std::uint8_t* data, std::size_t size, bool compress);

}  // namespace ambisql::test
