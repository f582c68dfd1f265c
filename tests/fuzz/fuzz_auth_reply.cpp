// Whatever the server says after the handshake response: OK, ERR, auth switch, more data.
#include "scripted.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    static const char* plugins[] = {"mysql_native_password", "caching_sha2_password", "client_ed25519",
                                    "mysql_clear_password", "unknown"};
    test::scripted t;
    config cfg;
    cfg.user = "u";
    cfg.password = "p";
    cfg.ssl = ssl_mode::disabled;
    t.s.start_connect(cfg, "localhost", (data[0] & 0x80) != 0);
    t.run();
    t.feed(test::packet(0, test::greeting(plugins[data[0] % 5], 0xF7FEF7FE)));
    // The rest is a sequence of packets: [len][payload...], sequence ids as expected.
    std::uint8_t seq = 2;
    std::size_t i = 1;
    while (i < size && t.s.in_progress()) {
        std::size_t len = data[i++];
        len = std::min(len, size - i);
        t.feed(test::packet(seq, test::bytes_t(data + i, data + i + len)));
        seq += 2;
        i += len;
    }
    return 0;
}
