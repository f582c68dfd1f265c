// A text row under arbitrary column types: split into fields, every field decoded.
#include "ambisql/error.hpp"
#include "proto/packets.hpp"
#include "proto/result_builder.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    std::size_t n = data[0] % 8 + 1;
    column cols[8];
    static const column_type types[] = {
        column_type::tiny,     column_type::longlong, column_type::float_,   column_type::double_,
        column_type::newdecimal, column_type::date,   column_type::datetime, column_type::time,
        column_type::year,     column_type::bit,      column_type::var_string, column_type::blob,
        column_type::timestamp, column_type::null,    column_type::json,     column_type::geometry};
    for (std::size_t i = 0; i < n; ++i) {
        cols[i].type = types[(data[1] + i * 7) % 16];
        cols[i].flags = (data[1] & 0x80) ? column_flag::unsigned_ : 0;
        cols[i].charset = (i & 1) ? binary_charset : 45;
    }
    proto::byte_span row(data + 2, size - 2);
    std::vector<detail::field_ref> fields;
    if (!proto::parse_text_row(row, n, row.data(), fields)) return 0;
    row_view v = detail::result_builder::row(row.data(), fields.data(), cols, n, false);
    for (std::size_t i = 0; i < n; ++i) {
        try {
            value x = v[i];
            (void)x.to_string();
            if (x.kind() == value_kind::time) (void)x.get_time().total_microseconds();  // (what Python's timedelta uses)
        } catch (const error&) {
        }
    }
    return 0;
}
