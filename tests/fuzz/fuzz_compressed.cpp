// Arbitrary bytes as the compressed frames (CLIENT_COMPRESS) answering a query, buffered
// or streamed, in odd pieces: the outer framing layer, zlib, and the packets inside.
#include "ambisql/error.hpp"
#include "scripted.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t mode = data[0];
    test::scripted t;
    config cfg;
    cfg.user = "u";
    cfg.ssl = ssl_mode::disabled;
    cfg.compress = true;
    cfg.max_packet_size = 1u << 24;
    t.connect(cfg, (mode & 1) ? 0xF7FEF7FE : (0xF7FEF7FE & ~(1u << 24)));
    if (!t.s.compressed()) __builtin_trap();
    results out;
    const bool stream = (mode & 2) != 0;
    // A long statement goes out deflated, a short one stored.
    std::string sql = (mode & 0x80) ? "SELECT '" + std::string(300, 'a') + "'" : "SELECT 1";
    t.s.start_query(sql, stream ? nullptr : &out);
    t.run();
    test::bytes_t rest(data + 1, data + size);
    std::size_t chunk = (mode >> 2) % 13 + 1;
    auto a = t.feed(rest, chunk);
    t.touch_results(out, stream, a);
    return 0;
}
