#include "proto/packets.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    proto::err_packet e;
    if (proto::parse_err(proto::byte_span(data, size), e)) {
        // Views must lie inside the input.
        if (!e.message.empty() && (e.message.data() < reinterpret_cast<const char*>(data) ||
                                   e.message.data() + e.message.size() > reinterpret_cast<const char*>(data) + size))
            __builtin_trap();
    }
    return 0;
}
