// Arbitrary server bytes as the response to a prepared-statement operation: a cached
// execute (PREPARE + EXECUTE in one round trip, as on MariaDB) or an explicit PREPARE,
// in odd pieces, with MariaDB's CACHE_METADATA negotiated or not. It must end in a result
// or a clean error; every value is decoded.
#include <algorithm>

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
    config cfg = test::scripted_config();
    t.connect(cfg, (mode & 1) ? 0xF7FEF7FE : (0xF7FEF7FE & ~(1u << 24)), (mode & 0x80) ? 1u << 4 : 0);
    results out;
    statement st;
    const sql_arg args[] = {sql_arg(1), sql_arg("x")};
    if (mode & 2)
        t.s.start_prepare("SELECT ?, ?", &st);
    else
        t.s.start_execute("SELECT ?, ?", args, (mode & 4) ? nullptr : &out);
    t.run();
    test::bytes_t rest(data + 1, data + size);
    test::bytes_t then;  // mode 0x40: the first byte says how much answers the prepare;
                         // what follows answers an execute of the statement
    if ((mode & 0x40) && !rest.empty()) {
        const std::size_t n = std::min<std::size_t>(rest[0], rest.size() - 1);
        then.assign(rest.begin() + 1 + static_cast<std::ptrdiff_t>(n), rest.end());
        rest = test::bytes_t(rest.begin() + 1, rest.begin() + 1 + static_cast<std::ptrdiff_t>(n));
    }
    t.feed(rest, (mode >> 3) % 7 + 1);
    if ((mode & 2) && !t.s.failed() && !t.s.in_progress() && st.valid() && st.params == 2) {
        // With CACHE_METADATA the execute's column definitions may be skipped.
        if (t.s.start_execute(st, args, &out)) {
            t.run();
            t.feed(then, 3);
        }
    }
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
