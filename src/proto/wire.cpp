#include "proto/wire.hpp"

namespace ambisql::proto {

void writer::lenenc(std::uint64_t v) {
    if (v < 0xFB) {
        u8(static_cast<std::uint8_t>(v));
    } else if (v <= 0xFFFF) {
        u8(0xFC);
        u16(static_cast<std::uint16_t>(v));
    } else if (v <= 0xFFFFFF) {
        u8(0xFD);
        u24(static_cast<std::uint32_t>(v));
    } else {
        u8(0xFE);
        u64(v);
    }
}

std::size_t lenenc_size(std::uint64_t v) noexcept {
    if (v < 0xFB) return 1;
    if (v <= 0xFFFF) return 3;
    if (v <= 0xFFFFFF) return 4;
    return 9;
}

}  // namespace ambisql::proto
