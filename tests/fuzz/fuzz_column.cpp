// Column definitions, alone and stored/parsed as a resultset does.
#include "proto/packets.hpp"
#include "proto/result_builder.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    proto::byte_span in(data, size);
    column c;
    (void)proto::parse_column(in, c);
    resultset r;
    detail::result_builder::add_column(r, in);
    detail::result_builder::add_column(r, in);
    if (detail::result_builder::finish_columns(r, 2)) {
        for (const auto& col : r.columns()) (void)col.name.size();
    }
    return 0;
}
