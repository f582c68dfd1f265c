#pragma once
// A row of a result: a view over the row's bytes, decoded field by field on access.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ambisql/value.hpp"

namespace ambisql {

namespace detail {
// Where a field's bytes are, relative to a base pointer; length null_field means NULL.
struct field_ref {
    std::uint32_t offset;
    std::uint32_t length;
};
inline constexpr std::uint32_t null_field = 0xFFFFFFFFu;
struct result_builder;
}  // namespace detail

// A view of one row. For a buffered result it stays valid as long as the result; for a
// streamed row, until the next call on the connection.
class row_view {
public:
    row_view() = default;

    std::size_t size() const noexcept { return size_; }
    bool is_null(std::size_t i) const noexcept { return fields_[i].length == detail::null_field; }

    // The field decoded to its typed value by the column's type (text or binary protocol).
    // Throws ambisql::error (protocol kind) when the server's text does not parse.
    value operator[](std::size_t i) const {
        const auto& f = fields_[i];
        if (f.length == detail::null_field) return value();
        const column& c = columns_[i];
        // Text columns need no parsing: the common case stays inline.
        switch (c.type) {
            case column_type::varchar:
            case column_type::var_string:
            case column_type::string:
            case column_type::tiny_blob:
            case column_type::medium_blob:
            case column_type::long_blob:
            case column_type::blob:
            case column_type::json:
            case column_type::enum_:
            case column_type::set:
                return value::from_text(c.is_binary() ? value_kind::blob : value_kind::string, raw(i));
            default: return decode_at(i);
        }
    }
    value at(std::size_t i) const;  // bounds-checked
    // By column name (first match); throws if there is none.
    value at(std::string_view column_name) const;

    // The field's bytes as sent; empty for NULL. In a binary row (prepared statements)
    // numbers and temporals are in their binary encoding.
    std::string_view raw(std::size_t i) const noexcept {
        const auto& f = fields_[i];
        if (f.length == detail::null_field) return {};
        return {reinterpret_cast<const char*>(base_ + f.offset), f.length};
    }
    const column& column_at(std::size_t i) const noexcept { return columns_[i]; }

private:
    friend class resultset;
    friend struct detail::result_builder;
    row_view(const std::uint8_t* base, const detail::field_ref* fields, const column* columns, std::size_t n,
             bool binary = false) noexcept
        : base_(base), fields_(fields), columns_(columns), size_(n), binary_(binary) {}
    value decode_at(std::size_t i) const;  // parses numbers and temporals
    const std::uint8_t* base_ = nullptr;
    const detail::field_ref* fields_ = nullptr;
    const column* columns_ = nullptr;
    std::size_t size_ = 0;
    bool binary_ = false;  // a binary-protocol row
};

// Decodes one text-protocol field of column c. Returns false when the text does not parse.
bool decode_text_field(const column& c, std::string_view text, value& out) noexcept;
// Decodes one binary-protocol field of column c (as row_view::raw() shows it).
bool decode_binary_field(const column& c, std::string_view bytes, value& out) noexcept;

}  // namespace ambisql
