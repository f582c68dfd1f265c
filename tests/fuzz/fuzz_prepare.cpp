// Arbitrary server bytes as the response to a prepared-statement operation: a cached
// execute (PREPARE + EXECUTE in one round trip, as on MariaDB) or an explicit PREPARE,
// in odd pieces. It must end in a result or a clean error; every value is decoded.
#include "ambisql/error.hpp"
#include "proto/binary.hpp"
#include "scripted.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t mode = data[0];
    proto::prepare_ok ok;
    (void)proto::parse_prepare_ok(proto::byte_span(data + 1, size - 1), ok);

    test::scripted t;
    config cfg;
    cfg.user = "u";
    cfg.ssl = ssl_mode::disabled;
    t.connect(cfg, (mode & 1) ? 0xF7FEF7FE : (0xF7FEF7FE & ~(1u << 24)));
    results out;
    statement st;
    const sql_arg args[] = {sql_arg(1), sql_arg("x")};
    if (mode & 2)
        t.s.start_prepare("SELECT ?, ?", &st);
    else
        t.s.start_execute("SELECT ?, ?", args, (mode & 4) ? nullptr : &out);
    t.run();
    test::bytes_t rest(data + 1, data + size);
    t.feed(rest, (mode >> 3) % 13 + 1);
    for (const auto& rs : out)
        for (auto r : rs)
            for (std::size_t i = 0; i < r.size(); ++i) {
                try {
                    (void)r[i].to_string();
                } catch (const error&) {
                }
            }
    return 0;
}
