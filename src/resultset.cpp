#include <cstring>

#include "ambisql/error.hpp"
#include "ambisql/resultset.hpp"
#include "proto/binary.hpp"
#include "proto/packets.hpp"
#include "proto/result_builder.hpp"

namespace ambisql {

namespace {
[[noreturn]] void throw_range(const char* what) {
    diagnostics d;
    d.kind = error_kind::client;
    d.code = errc::value_out_of_range;
    d.message = what;
    throw error(std::move(d));
}
}  // namespace

row_view resultset::at(std::size_t i) const {
    if (i >= row_count_) throw_range("row index out of range");
    return (*this)[i];
}

const resultset& results::at(std::size_t i) const {
    if (i >= count_) throw_range("resultset index out of range");
    return sets_[i];
}

resultset results::take_first() {
    if (count_ == 0) throw_range("resultset index out of range");
    return std::move(sets_[0]);
}

resultset& results::add() {
    if (count_ == sets_.size()) sets_.emplace_back();
    resultset& r = sets_[count_++];
    detail::result_builder::reset(r);
    return r;
}

void detail::result_builder::reset(resultset& r) noexcept {
    r.meta_.clear();
    r.columns_.clear();
    r.data_.clear();
    r.fields_.clear();
    r.row_count_ = 0;
    r.binary_ = false;
    r.ok_.affected_rows = r.ok_.last_insert_id = 0;
    r.ok_.status = r.ok_.warnings = 0;
    r.ok_.info.clear();
}

void detail::result_builder::append_column(std::vector<std::uint8_t>& meta, proto::byte_span p) {
    auto n = static_cast<std::uint32_t>(p.size());
    std::uint8_t len[4];
    std::memcpy(len, &n, 4);
    meta.insert(meta.end(), len, len + 4);
    meta.insert(meta.end(), p.begin(), p.end());
}

bool detail::result_builder::finish_columns(resultset& r, std::size_t n) {
    r.columns_.resize(n);
    std::size_t pos = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (r.meta_.size() - pos < 4) return false;
        std::uint32_t len;
        std::memcpy(&len, r.meta_.data() + pos, 4);
        pos += 4;
        if (r.meta_.size() - pos < len) return false;
        if (!proto::parse_column(proto::byte_span(r.meta_.data() + pos, len), r.columns_[i])) return false;
        pos += len;
    }
    return true;
}

namespace {
template <class Parse>
bool add_row(std::vector<std::uint8_t>& data, std::vector<detail::field_ref>& fields, proto::byte_span p,
             Parse parse) {
    std::size_t at = data.size();
    if (p.size() >= detail::null_field - at) return false;  // offsets are 32-bit
    data.insert(data.end(), p.begin(), p.end());
    std::size_t before = fields.size();
    // Offsets are relative to data's start, so they survive its reallocation.
    if (!parse(proto::byte_span(data.data() + at, p.size()), data.data())) {
        fields.resize(before);
        data.resize(at);
        return false;
    }
    return true;
}
}  // namespace

bool detail::result_builder::add_text_row(resultset& r, proto::byte_span p) {
    bool ok = add_row(r.data_, r.fields_, p, [&](proto::byte_span row, const std::uint8_t* base) {
        return proto::parse_text_row(row, r.columns_.size(), base, r.fields_);
    });
    if (ok) ++r.row_count_;
    return ok;
}

bool detail::result_builder::add_binary_row(resultset& r, proto::byte_span p) {
    bool ok = add_row(r.data_, r.fields_, p, [&](proto::byte_span row, const std::uint8_t* base) {
        return proto::parse_binary_row(row, r.columns_, base, r.fields_);
    });
    if (ok) ++r.row_count_;
    return ok;
}

}  // namespace ambisql
