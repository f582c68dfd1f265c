// The server greeting: the parser alone, then a whole connect fed the bytes as a packet.
#include "proto/packets.hpp"
#include "scripted.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    proto::byte_span in(data, size);
    proto::server_handshake hs;
    (void)proto::parse_handshake(in, hs);

    test::scripted t;
    config cfg;
    cfg.user = "u";
    cfg.password = "p";
    cfg.ssl = size > 0 && (data[0] & 1) ? ssl_mode::preferred : ssl_mode::disabled;
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(test::packet(0, test::bytes_t(data, data + size)));
    return 0;
}
