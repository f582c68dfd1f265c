#include "proto/packets.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    proto::byte_span in(data, size);
    ok_info ok;
    (void)proto::parse_ok(in, false, ok);
    (void)proto::parse_ok(in, true, ok);
    (void)proto::parse_eof(in, ok);
    (void)proto::is_terminator(in);
    return 0;
}
