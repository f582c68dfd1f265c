#pragma once
// The binary protocol of prepared statements: COM_STMT_PREPARE's response, the
// COM_STMT_EXECUTE request, and binary result rows.
#include <cstdint>
#include <span>
#include <vector>

#include "ambisql/error.hpp"
#include "ambisql/format.hpp"
#include "ambisql/row.hpp"
#include "ambisql/value.hpp"
#include "proto/wire.hpp"

namespace ambisql::proto {

// The statement id MariaDB accepts for "the statement this pipeline just prepared".
inline constexpr std::uint32_t last_prepared_statement = 0xFFFFFFFFu;

struct prepare_ok {
    std::uint32_t statement_id = 0;
    std::uint16_t columns = 0;
    std::uint16_t params = 0;
    std::uint16_t warnings = 0;
};
// The first packet of a successful COM_STMT_PREPARE response (header 0x00).
bool parse_prepare_ok(byte_span payload, prepare_ok& out) noexcept;

// Text and bytes parameters this large travel ahead of the execute in
// COM_STMT_SEND_LONG_DATA commands (pieces of long_data_piece bytes), when the caller
// knows the statement id.
inline constexpr std::size_t long_data_threshold = 1 << 20;
inline constexpr std::size_t long_data_piece = 4 << 20;
inline bool is_long_data(const sql_arg& a) noexcept {
    return (a.type() == sql_arg::kind::text || a.type() == sql_arg::kind::bytes) && a.text().size() >= long_data_threshold;
}

// Appends a whole COM_STMT_EXECUTE payload (command byte included) binding args by
// their own types. Fails (nothing usable appended) for an argument that cannot be bound.
// With long_data, the values of is_long_data() arguments are left out (sent before).
// With bound_types (the parameter types the server holds for the statement, empty when
// unknown), the types are sent only when they differ from those, and *bound_types is
// updated; without, they are always sent.
std::error_code write_execute(std::vector<std::uint8_t>& out, std::uint32_t statement_id,
                              std::span<const sql_arg> args, bool long_data = false,
                              std::vector<std::uint8_t>* bound_types = nullptr);
// One COM_STMT_SEND_LONG_DATA payload: `data` appended to parameter `param`.
void write_long_data(std::vector<std::uint8_t>& out, std::uint32_t statement_id, std::uint16_t param,
                     std::string_view data);

// Appends a COM_STMT_BULK_EXECUTE payload (MariaDB, STMT_BULK_OPERATIONS) for rows of
// `values` (row-major, `width` values per row) from row `first`, as many as fit in
// `max_bytes` (at least one); `next` is the first row not written. Parameter types come
// from the first non-NULL value of each column in the batch; the batch ends before a row
// whose kinds differ (the next batch carries that row's types), so a column may change
// kind between batches. An identifier is errc::bad_value.
std::error_code write_bulk_execute(std::vector<std::uint8_t>& out, std::uint32_t statement_id,
                                   std::span<const sql_arg> values, std::size_t width, std::size_t first,
                                   std::size_t max_bytes, std::size_t& next);

// Splits a binary row (header 0x00, NULL bitmap at bit offset 2, then the non-NULL
// values) into field references relative to base. A fixed-size value's bytes are its
// little-endian encoding; a temporal's are the bytes after its length byte; strings,
// DECIMAL and BIT are their bytes after the length-encoded length.
bool parse_binary_row(byte_span payload, std::span<const column> columns, const std::uint8_t* base,
                      std::vector<detail::field_ref>& out);

}  // namespace ambisql::proto
