#pragma once
// Buffered results: one resultset per statement, owning its rows and metadata.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "ambisql/row.hpp"
#include "ambisql/value.hpp"

namespace ambisql {

namespace detail {
struct result_builder;
}

// Server status flags carried by OK and EOF packets.
namespace server_status {
inline constexpr std::uint16_t in_trans = 1;
inline constexpr std::uint16_t autocommit = 2;
inline constexpr std::uint16_t more_results_exist = 8;
inline constexpr std::uint16_t no_good_index_used = 16;
inline constexpr std::uint16_t no_index_used = 32;
inline constexpr std::uint16_t cursor_exists = 64;
inline constexpr std::uint16_t last_row_sent = 128;
inline constexpr std::uint16_t db_dropped = 256;
inline constexpr std::uint16_t no_backslash_escapes = 512;
inline constexpr std::uint16_t metadata_changed = 1024;
inline constexpr std::uint16_t query_was_slow = 2048;
inline constexpr std::uint16_t ps_out_params = 4096;
inline constexpr std::uint16_t in_trans_readonly = 8192;
inline constexpr std::uint16_t session_state_changed = 16384;
}  // namespace server_status

// What an OK (or EOF) packet reports.
struct ok_info {
    std::uint64_t affected_rows = 0;
    std::uint64_t last_insert_id = 0;
    std::uint16_t status = 0;
    std::uint16_t warnings = 0;
    std::string info;
};

class resultset {
public:
    resultset() = default;
    resultset(resultset&&) noexcept = default;
    resultset& operator=(resultset&&) noexcept = default;
    resultset(const resultset&) = delete;  // columns are views into owned storage
    resultset& operator=(const resultset&) = delete;

    std::span<const column> columns() const noexcept { return columns_; }
    std::size_t column_count() const noexcept { return columns_.size(); }
    bool has_rows() const noexcept { return !columns_.empty(); }  // false for INSERT etc.
    std::size_t size() const noexcept { return row_count_; }
    bool empty() const noexcept { return row_count_ == 0; }
    row_view operator[](std::size_t i) const noexcept {
        return row_view(data_.data(), fields_.data() + i * columns_.size(), columns_.data(), columns_.size(),
                        binary_);
    }
    row_view at(std::size_t i) const;

    // Random access over the rows (rows are views, made on dereference).
    class iterator {
    public:
        using iterator_category = std::random_access_iterator_tag;
        using iterator_concept = std::random_access_iterator_tag;
        using value_type = row_view;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = row_view;
        iterator() = default;
        iterator(const resultset* r, std::size_t i) : r_(r), i_(static_cast<difference_type>(i)) {}
        row_view operator*() const { return (*r_)[static_cast<std::size_t>(i_)]; }
        row_view operator[](difference_type n) const { return (*r_)[static_cast<std::size_t>(i_ + n)]; }
        iterator& operator++() { ++i_; return *this; }
        iterator operator++(int) { auto t = *this; ++i_; return t; }
        iterator& operator--() { --i_; return *this; }
        iterator operator--(int) { auto t = *this; --i_; return t; }
        iterator& operator+=(difference_type n) { i_ += n; return *this; }
        iterator& operator-=(difference_type n) { i_ -= n; return *this; }
        friend iterator operator+(iterator a, difference_type n) { return a += n; }
        friend iterator operator+(difference_type n, iterator a) { return a += n; }
        friend iterator operator-(iterator a, difference_type n) { return a -= n; }
        friend difference_type operator-(const iterator& a, const iterator& b) { return a.i_ - b.i_; }
        friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }
        friend auto operator<=>(const iterator& a, const iterator& b) { return a.i_ <=> b.i_; }
    private:
        const resultset* r_ = nullptr;
        difference_type i_ = 0;
    };
    iterator begin() const noexcept { return {this, 0}; }
    iterator end() const noexcept { return {this, row_count_}; }

    const ok_info& ok() const noexcept { return ok_; }
    std::uint64_t affected_rows() const noexcept { return ok_.affected_rows; }
    std::uint64_t last_insert_id() const noexcept { return ok_.last_insert_id; }
    std::uint16_t warning_count() const noexcept { return ok_.warnings; }

private:
    friend struct detail::result_builder;  // the protocol core fills it
    std::vector<std::uint8_t> meta_;  // column definition payloads
    std::vector<column> columns_;     // views into meta_
    std::vector<std::uint8_t> data_;  // row bytes
    std::vector<detail::field_ref> fields_;
    std::size_t row_count_ = 0;
    ok_info ok_;
    bool binary_ = false;  // rows in the binary protocol (prepared statements)
};

// One row that owns the resultset it came from: what results::row() gives on a
// temporary, so `auto r = conn.query(...).row(0);` does not outlive its bytes.
class owned_row {
public:
    owned_row(resultset set, std::size_t i) : set_(std::move(set)), i_(i) { (void)set_.at(i); }  // bounds-checked
    row_view view() const& noexcept { return set_[i_]; }
    row_view view() && = delete;  // would dangle: keep the owned_row
    std::size_t size() const noexcept { return set_.column_count(); }
    bool is_null(std::size_t k) const noexcept { return set_[i_].is_null(k); }
    value operator[](std::size_t k) const { return set_[i_][k]; }
    value at(std::size_t k) const { return set_[i_].at(k); }
    value at(std::string_view column_name) const { return set_[i_].at(column_name); }
    std::string_view raw(std::size_t k) const noexcept { return set_[i_].raw(k); }
    std::span<const column> columns() const noexcept { return set_.columns(); }

private:
    resultset set_;
    std::size_t i_;
};

// Everything a query returned: one resultset per statement.
class results {
public:
    std::size_t size() const noexcept { return count_; }
    const resultset& operator[](std::size_t i) const noexcept { return sets_[i]; }
    const resultset& at(std::size_t i) const;
    const resultset* begin() const noexcept { return sets_.data(); }
    const resultset* end() const noexcept { return sets_.data() + count_; }

    // The first resultset's rows and metadata, for the common one-statement case.
    const resultset& first() const& { return at(0); }
    // On a temporary (`for (auto row : conn.query(...).rows())`) the resultset is moved
    // out, so the loop does not walk a destroyed object.
    resultset first() && { return take_first(); }
    std::span<const column> columns() const& { return first().columns(); }
    std::span<const column> columns() && = delete;  // views into a temporary: bind the results first
    std::size_t row_count() const { return first().size(); }
    row_view row(std::size_t i) const& { return first().at(i); }
    // On a temporary the row takes the resultset with it (see owned_row).
    owned_row row(std::size_t i) && { return owned_row(take_first(), i); }
    resultset::iterator rows_begin() const& { return first().begin(); }
    resultset::iterator rows_begin() && = delete;  // would point into a temporary
    const resultset& rows() const& { return first(); }
    resultset rows() && { return take_first(); }
    std::uint64_t affected_rows() const { return count_ ? sets_[count_ - 1].affected_rows() : 0; }
    std::uint64_t last_insert_id() const { return count_ ? sets_[count_ - 1].last_insert_id() : 0; }

private:
    friend struct detail::result_builder;  // the protocol core fills it (reusing storage)
    void clear() noexcept { count_ = 0; }
    resultset& add();
    resultset take_first();
    std::vector<resultset> sets_;  // sets_[0..count_) are live; the rest keep capacity
    std::size_t count_ = 0;
};

}  // namespace ambisql
