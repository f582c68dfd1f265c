#include "scripted.hpp"

#include <stdexcept>

#include "ambisql/error.hpp"

namespace ambisql::test {

bytes_t greeting(std::string_view plugin, std::uint32_t caps, std::string_view scramble, std::uint32_t ext_caps) {
    bytes_t p;
    p.push_back(10);
    std::string_view ver = "5.5.5-10.11.19-MariaDB";
    p.insert(p.end(), ver.begin(), ver.end());
    p.push_back(0);
    p.insert(p.end(), {42, 0, 0, 0});  // connection id
    p.insert(p.end(), scramble.begin(), scramble.begin() + 8);
    p.push_back(0);
    p.push_back(static_cast<std::uint8_t>(caps));
    p.push_back(static_cast<std::uint8_t>(caps >> 8));
    p.push_back(45);       // charset
    p.insert(p.end(), {2, 0});  // status
    p.push_back(static_cast<std::uint8_t>(caps >> 16));
    p.push_back(static_cast<std::uint8_t>(caps >> 24));
    p.push_back(21);  // auth data length
    p.insert(p.end(), 6, 0);
    for (int i = 0; i < 4; ++i) p.push_back(static_cast<std::uint8_t>(ext_caps >> (8 * i)));  // MariaDB extended caps
    p.insert(p.end(), scramble.begin() + 8, scramble.begin() + 20);
    p.push_back(0);
    p.insert(p.end(), plugin.begin(), plugin.end());
    p.push_back(0);
    return p;
}

bytes_t column_def(std::string_view name, std::uint8_t type, std::uint16_t flags, std::uint16_t charset) {
    bytes_t p = cat({lenenc_str("def"), lenenc_str("db"), lenenc_str("t"), lenenc_str("t"), lenenc_str(name),
                     lenenc_str(name)});
    p.push_back(0x0c);
    p.push_back(static_cast<std::uint8_t>(charset));
    p.push_back(static_cast<std::uint8_t>(charset >> 8));
    p.insert(p.end(), {11, 0, 0, 0});
    p.push_back(type);
    p.push_back(static_cast<std::uint8_t>(flags));
    p.push_back(static_cast<std::uint8_t>(flags >> 8));
    p.push_back(0);
    p.insert(p.end(), {0, 0});
    return p;
}

bytes_t ok_payload(std::uint64_t affected, std::uint64_t insert_id, std::uint16_t status, std::uint8_t header) {
    return {header, static_cast<std::uint8_t>(affected), static_cast<std::uint8_t>(insert_id),
            static_cast<std::uint8_t>(status), static_cast<std::uint8_t>(status >> 8), 0, 0};
}

bytes_t eof_payload(std::uint16_t status) {
    return {0xFE, 0, 0, static_cast<std::uint8_t>(status), static_cast<std::uint8_t>(status >> 8)};
}

bytes_t err_payload(std::uint16_t code, std::string_view state, std::string_view msg) {
    bytes_t p{0xFF, static_cast<std::uint8_t>(code), static_cast<std::uint8_t>(code >> 8), '#'};
    p.insert(p.end(), state.begin(), state.end());
    p.insert(p.end(), msg.begin(), msg.end());
    return p;
}

void scripted::touch_results(const results& out, bool stream, proto::next_action a) {
    auto touch = [](row_view r) {
        for (std::size_t i = 0; i < r.size(); ++i) {
            try {
                (void)r[i].to_string();
            } catch (const error&) {
            }
        }
    };
    if (!stream) {
        for (const auto& rs : out)
            for (auto r : rs) touch(r);
        return;
    }
    for (int rounds = 0; rounds < 4 && a == proto::next_action::done && !s.failed(); ++rounds) {
        if (!s.start_read_rows()) break;
        a = run();
        for (std::size_t i = 0; i < s.batch_size(); ++i) touch(s.batch_row(i));
    }
}

void fuzz_query_response(const std::uint8_t* data, std::size_t size, bool compress) {
    if (size < 1) return;
    const std::uint8_t mode = data[0];
    scripted t;
    config cfg = scripted_config();
    cfg.compress = compress;
    cfg.max_packet_size = 1u << 24;
    t.connect(cfg, (mode & 1) ? 0xF7FEF7FE : (0xF7FEF7FE & ~(1u << 24)));
    if (t.s.compressed() != compress) __builtin_trap();
    results out;
    const bool stream = (mode & 2) != 0;
    const std::string sql = (compress && (mode & 0x80)) ? "SELECT '" + std::string(300, 'a') + "'" : "SELECT 1";
    t.s.start_query(sql, stream ? nullptr : &out);
    t.run();
    const auto a = t.feed(bytes_t(data + 1, data + size), (mode >> 2) % 13 + 1);
    t.touch_results(out, stream, a);
}

bytes_t tracked_ok_payload(std::string_view list) {
    bytes_t var = cat({lenenc_str("session_track_system_variables"), lenenc_str(list)});
    bytes_t block = cat({{0}, lenenc_str(std::string(var.begin(), var.end()))});
    return cat({{0x00, 0, 0, 0x02, 0x40, 0, 0}, {0}, lenenc_str(std::string(block.begin(), block.end()))});
}

proto::next_action scripted::auth_ok(const bytes_t& ok_packet) {
    proto::next_action a = feed(ok_packet);
    if (a != proto::next_action::read || !s.connected()) return a;
    // The tracking statement went out; its answer (in a stored frame once compressed).
    bytes_t answer = packet(1, tracked_ok_payload());
    if (s.compressed())
        answer = cat({bytes_t{static_cast<std::uint8_t>(answer.size()), 0, 0, 1, 0, 0, 0}, answer});
    return feed(answer);
}

void scripted::connect(const config& cfg, std::uint32_t caps, std::uint32_t ext_caps) {
    s.start_connect(cfg, "localhost", false);
    if (run() != proto::next_action::read) throw std::runtime_error("connect did not wait for the greeting");
    feed(packet(0, greeting("mysql_native_password", caps, "abcdefghijklmnopqrst", ext_caps)));
    (void)caps;
    proto::next_action a = auth_ok(packet(2, ok_payload()));
    if (a != proto::next_action::done || s.failed())
        throw std::runtime_error("scripted connect failed: " + s.diag().message);
    sent.clear();
}

}  // namespace ambisql::test
