#pragma once
// A server-side prepared statement (binary protocol).
#include <cstdint>

namespace ambisql {

struct statement {
    std::uint32_t id = 0;       // the server's handle; 0 = none
    std::uint16_t params = 0;   // number of `?` placeholders
    std::uint16_t columns = 0;  // columns of its result (0 for INSERT etc.)
    bool valid() const noexcept { return id != 0; }
};

}  // namespace ambisql
