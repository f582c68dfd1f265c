#include "proto/packets.hpp"

#include <algorithm>
#include <cstring>

namespace ambisql::proto {

bool parse_handshake(byte_span payload, server_handshake& out) noexcept {
    reader r(payload);
    out.protocol_version = r.u8();
    if (!r.ok() || out.protocol_version != 10) return false;
    out.server_version = std::string(r.null_string());
    // MariaDB prefixes "5.5.5-" for old replication clients; the real version follows.
    if (out.server_version.rfind("5.5.5-", 0) == 0 && out.server_version.find("MariaDB") != std::string::npos)
        out.server_version.erase(0, 6);
    out.connection_id = r.u32();
    std::string_view part1 = r.bytes(8);
    r.u8();  // filler
    std::uint64_t caps = r.u16();
    if (!r.ok()) return false;
    out.scramble.assign(part1);
    out.auth_plugin.clear();
    out.is_mariadb = false;
    if (r.at_end()) {  // a pre-4.1 style short handshake: not supported by the caller
        out.capabilities = caps;
        return true;
    }
    out.charset = r.u8();
    out.status = r.u16();
    caps |= std::uint64_t(r.u16()) << 16;
    std::uint8_t auth_len = r.u8();
    r.skip(6);
    std::uint32_t ext = r.u32();
    if (!r.ok()) return false;
    if (!(caps & cap::long_password)) {  // MariaDB: CLIENT_MYSQL clear, extended caps present
        out.is_mariadb = true;
        caps |= std::uint64_t(ext) << 32;
    }
    out.capabilities = caps;
    if (caps & cap::secure_connection) {
        // All of part 2 must be there: a cut-off greeting is malformed, not a short scramble.
        std::size_t n = std::max<std::size_t>(13, auth_len > 8 ? auth_len - 8 : 0);
        std::string_view part2 = r.bytes(n);
        if (!r.ok()) return false;
        // The last byte of part 2 is a NUL terminator, not scramble: without it the
        // greeting is malformed (read on, a byte of something else would be taken for
        // scramble).
        if (part2.back() != '\0') return false;
        part2.remove_suffix(1);
        out.scramble.append(part2);
    }
    if (caps & cap::plugin_auth) {
        // NUL-terminated; some old servers leave the final NUL out at the packet's end.
        // CLIENT_PLUGIN_AUTH with no plugin named is malformed (not "native by default").
        std::string_view rest = r.rest();
        auto z = rest.find('\0');
        out.auth_plugin.assign(rest.substr(0, z));
        if (out.auth_plugin.empty()) return false;
    }
    return r.ok();
}

bool parse_err(byte_span payload, err_packet& out) noexcept {
    reader r(payload);
    if (r.u8() != 0xFF) return false;
    out.code = r.u16();
    if (!r.ok()) return false;
    out.sqlstate = {};
    if (r.peek() == '#' && r.remaining() >= 6) {
        r.skip(1);
        out.sqlstate = r.bytes(5);
    }
    out.message = r.rest();
    return r.ok();
}

bool parse_ok(byte_span payload, bool session_track, ok_info& out, session_changes* changes) noexcept {
    reader r(payload);
    std::uint8_t h = r.u8();
    if (h != 0x00 && h != 0xFE) return false;
    out.affected_rows = r.lenenc();
    out.last_insert_id = r.lenenc();
    out.status = r.u16();
    out.warnings = r.u16();
    if (!r.ok()) return false;
    if (r.at_end()) {
        out.info.clear();
        return true;
    }
    if (session_track) {
        out.info.assign(r.lenenc_string());
        if ((out.status & server_status::session_state_changed) && !r.at_end()) {
            std::string_view block = r.lenenc_string();
            reader b(byte_span(reinterpret_cast<const std::uint8_t*>(block.data()), block.size()));
            while (b.ok() && !b.at_end()) {
                std::uint8_t type = b.u8();
                std::string_view data = b.lenenc_string();
                reader d(byte_span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
                if (type == 0) {  // SESSION_TRACK_SYSTEM_VARIABLES: name, value
                    std::string_view name = d.lenenc_string();
                    std::string_view value = d.lenenc_string();
                    if (d.ok() && changes && name == "character_set_client") {
                        changes->charset_changed = true;
                        changes->charset.assign(value);
                    } else if (d.ok() && changes && name == "session_track_system_variables") {
                        changes->tracked_changed = true;
                        changes->tracked.assign(value);
                    }
                } else if (type == 1) {  // SESSION_TRACK_SCHEMA
                    std::string_view schema = d.lenenc_string();
                    if (d.ok() && changes) {
                        changes->schema_changed = true;
                        changes->schema.assign(schema);
                    }
                }
            }
            if (!b.ok()) return false;
        }
    } else {
        out.info.assign(r.rest());
    }
    return r.ok();
}

bool parse_eof(byte_span payload, ok_info& out) noexcept {
    reader r(payload);
    if (r.u8() != 0xFE) return false;
    out.warnings = r.u16();
    out.status = r.u16();
    out.affected_rows = 0;
    out.last_insert_id = 0;
    out.info.clear();
    return r.ok() && r.at_end();
}

bool parse_column(byte_span payload, column& out) noexcept {
    reader r(payload);
    r.lenenc_string();  // catalog, always "def"
    out.schema = r.lenenc_string();
    out.table = r.lenenc_string();
    out.org_table = r.lenenc_string();
    out.name = r.lenenc_string();
    out.org_name = r.lenenc_string();
    std::uint64_t fixed_len = r.lenenc();
    if (!r.ok() || fixed_len < 10 || fixed_len > r.remaining()) return false;
    out.charset = r.u16();
    out.length = r.u32();
    out.type = static_cast<column_type>(r.u8());
    out.flags = r.u16();
    out.decimals = r.u8();
    return r.ok();
}

bool parse_text_row(byte_span payload, std::size_t n, const std::uint8_t* base,
                    std::vector<detail::field_ref>& out) {
    const std::uint8_t* p = payload.data();
    const std::uint8_t* end = p + payload.size();
    for (std::size_t i = 0; i < n; ++i) {
        if (p >= end) return false;
        std::uint8_t b = *p++;
        std::uint64_t len;
        if (b < 0xFB) {
            len = b;
        } else if (b == 0xFB) {
            out.push_back({0, detail::null_field});
            continue;
        } else {
            std::size_t w = b == 0xFC ? 2 : b == 0xFD ? 3 : b == 0xFE ? 8 : 0;
            if (w == 0 || std::size_t(end - p) < w) return false;
            len = 0;
            for (std::size_t k = 0; k < w; ++k) len |= std::uint64_t(p[k]) << (8 * k);
            p += w;
        }
        if (len > std::size_t(end - p) || len >= detail::null_field) return false;
        out.push_back({static_cast<std::uint32_t>(p - base), static_cast<std::uint32_t>(len)});
        p += len;
    }
    return p == end;
}

namespace {
void write_hello_head(writer& w, const client_hello& h) {
    w.u32(static_cast<std::uint32_t>(h.capabilities));
    w.u32(h.max_packet);
    w.u8(h.collation);
    w.zeros(19);
    w.u32(static_cast<std::uint32_t>(h.capabilities >> 32));  // MariaDB extended caps
}
}  // namespace

void write_ssl_request(std::vector<std::uint8_t>& out, const client_hello& h) {
    writer w(out);
    write_hello_head(w, h);
}

void write_handshake_response(std::vector<std::uint8_t>& out, const client_hello& h) {
    writer w(out);
    write_hello_head(w, h);
    w.null_string(h.user);
    if (h.capabilities & cap::plugin_auth_lenenc) {
        w.lenenc_string(h.auth_response);
    } else {
        w.u8(static_cast<std::uint8_t>(h.auth_response.size()));
        w.bytes(h.auth_response);
    }
    if (h.capabilities & cap::connect_with_db) w.null_string(h.database);
    if (h.capabilities & cap::plugin_auth) w.null_string(h.auth_plugin);
    if ((h.capabilities & cap::connect_attrs) && h.attributes) {
        std::vector<std::uint8_t> attrs;
        writer a(attrs);
        for (const auto& [k, v] : *h.attributes) {
            a.lenenc_string(k);
            a.lenenc_string(v);
        }
        w.lenenc(attrs.size());
        w.bytes(byte_span(attrs));
    }
}

std::uint8_t collation_for_charset(std::string_view cs) noexcept {
    struct entry {
        std::string_view name;
        std::uint8_t id;
    };
    static constexpr entry table[] = {
        {"utf8mb4", 45}, {"utf8mb3", 33}, {"utf8", 33},   {"latin1", 8},  {"binary", 63},
        {"ascii", 11},   {"big5", 1},     {"sjis", 13},   {"cp932", 95},  {"gbk", 28},
        {"gb2312", 24},  {"latin2", 9},
        {"cp1251", 51},  {"cp1250", 26},  {"koi8r", 7},   {"greek", 25},  {"hebrew", 16},
        {"euckr", 19},   {"ujis", 12},    {"eucjpms", 97}, {"tis620", 18}, {"cp1256", 57},
    };
    for (const auto& e : table)
        if (e.name == cs) return e.id;
    return 0;
}

}  // namespace ambisql::proto
