#pragma once
// How the core fills a resultset (its storage is private to users).
#include "ambisql/resultset.hpp"
#include "proto/wire.hpp"

namespace ambisql::detail {

// The protocol core's access to results (their storage is private to users).
struct result_builder {
    static void reset(resultset& r) noexcept;
    // Column definitions arrive one packet at a time; finish_columns parses them once all
    // are stored, so the column views point into storage that no longer moves.
    static void add_column(resultset& r, proto::byte_span payload) { append_column(r.meta_, payload); }
    static void append_column(std::vector<std::uint8_t>& meta, proto::byte_span payload);
    static bool finish_columns(resultset& r, std::size_t n);
    // The stored definitions (add_column's format), to keep, or to reuse for a result
    // whose definitions the server skipped.
    static const std::vector<std::uint8_t>& meta(const resultset& r) noexcept { return r.meta_; }
    static void set_meta(resultset& r, const std::vector<std::uint8_t>& m) { r.meta_ = m; }
    static bool add_text_row(resultset& r, proto::byte_span payload);
    static bool add_binary_row(resultset& r, proto::byte_span payload);
    static void set_binary(resultset& r, bool binary) noexcept { r.binary_ = binary; }
    static bool binary(const resultset& r) noexcept { return r.binary_; }
    static void set_ok(resultset& r, const ok_info& ok) { r.ok_ = ok; }
    static std::vector<column>& columns(resultset& r) noexcept { return r.columns_; }
    static void clear(results& r) noexcept { r.clear(); }
    static resultset& add(results& r) { return r.add(); }
    static row_view row(const std::uint8_t* base, const field_ref* fields, const column* columns, std::size_t n,
                        bool binary) noexcept {
        return row_view(base, fields, columns, n, binary);
    }
};

}  // namespace ambisql::detail
