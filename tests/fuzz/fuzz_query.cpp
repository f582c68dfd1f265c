// Arbitrary bytes as the whole response to a query, buffered or streamed, in odd pieces.
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
    t.connect(cfg, (mode & 1) ? 0xF7FEF7FE : (0xF7FEF7FE & ~(1u << 24)));
    results out;
    const bool stream = (mode & 2) != 0;
    t.s.start_query("SELECT 1", stream ? nullptr : &out);
    t.run();
    test::bytes_t rest(data + 1, data + size);
    std::size_t chunk = (mode >> 2) % 13 + 1;
    auto a = t.feed(rest, chunk);
    // Walk whatever arrived, decoding every value.
    t.touch_results(out, stream, a);
    return 0;
}
