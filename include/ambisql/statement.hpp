#pragma once
// A server-side prepared statement (binary protocol).
#include <cstdint>

namespace ambisql {

struct statement {
    std::uint32_t id = 0;       // the server's handle; 0 = none
    std::uint16_t params = 0;   // number of `?` placeholders
    std::uint16_t columns = 0;  // columns of its result (0 for INSERT etc.)
    // Which connection and session prepared it (set by prepare): using it on another
    // connection, or after a reconnect or reset_connection of this one, fails with
    // errc::stale_handle instead of running whatever statement has that id there. 0 (a
    // statement made by hand) is not checked.
    std::uint64_t session = 0;
    bool valid() const noexcept { return id != 0; }
};

}  // namespace ambisql
