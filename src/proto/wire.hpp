#pragma once
// Bounds-checked little-endian readers and writers for protocol payloads.
// A reader never reads past its end: a short read sets `ok()` to false and yields zeros.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace ambisql::proto {

using byte_span = std::span<const std::uint8_t>;

class reader {
public:
    explicit reader(byte_span s) noexcept : p_(s.data()), end_(s.data() + s.size()) {}

    bool ok() const noexcept { return ok_; }
    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
    bool at_end() const noexcept { return p_ == end_; }
    const std::uint8_t* position() const noexcept { return p_; }

    std::uint8_t peek() const noexcept { return p_ < end_ ? *p_ : 0; }
    std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(fixed(1)); }
    std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(fixed(2)); }
    std::uint32_t u24() noexcept { return static_cast<std::uint32_t>(fixed(3)); }
    std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(fixed(4)); }
    std::uint64_t u64() noexcept { return fixed(8); }
    std::uint64_t fixed(std::size_t n) noexcept {
        if (remaining() < n) return fail();
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(p_[i]) << (8 * i);
        p_ += n;
        return v;
    }
    // Length-encoded integer. 0xFB (NULL) and 0xFF are not integers: they fail here.
    std::uint64_t lenenc() noexcept {
        if (!ok_ || p_ >= end_) return fail();
        std::uint8_t b = *p_++;
        if (b < 0xFB) return b;
        if (b == 0xFC) return fixed(2);
        if (b == 0xFD) return fixed(3);
        if (b == 0xFE) return fixed(8);
        return fail();
    }
    std::string_view bytes(std::size_t n) noexcept {
        if (remaining() < n) {
            fail();
            return {};
        }
        std::string_view s(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        return s;
    }
    std::string_view lenenc_string() noexcept {
        std::uint64_t n = lenenc();
        if (!ok_ || n > remaining()) {
            fail();
            return {};
        }
        return bytes(static_cast<std::size_t>(n));
    }
    // NUL-terminated string; fails when there is no NUL.
    std::string_view null_string() noexcept {
        const void* z = p_ < end_ ? std::memchr(p_, 0, remaining()) : nullptr;
        if (!z) {
            fail();
            return {};
        }
        auto n = static_cast<std::size_t>(static_cast<const std::uint8_t*>(z) - p_);
        std::string_view s(reinterpret_cast<const char*>(p_), n);
        p_ += n + 1;
        return s;
    }
    std::string_view rest() noexcept { return bytes(remaining()); }
    void skip(std::size_t n) noexcept { bytes(n); }

private:
    std::uint64_t fail() noexcept {
        ok_ = false;
        p_ = end_;
        return 0;
    }
    const std::uint8_t* p_;
    const std::uint8_t* end_;
    bool ok_ = true;
};

// Appends to a byte vector.
class writer {
public:
    explicit writer(std::vector<std::uint8_t>& out) noexcept : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) { fixed(v, 2); }
    void u24(std::uint32_t v) { fixed(v, 3); }
    void u32(std::uint32_t v) { fixed(v, 4); }
    void u64(std::uint64_t v) { fixed(v, 8); }
    void fixed(std::uint64_t v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    void lenenc(std::uint64_t v);
    void bytes(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
    void bytes(byte_span s) { out_.insert(out_.end(), s.begin(), s.end()); }
    void lenenc_string(std::string_view s) {
        lenenc(s.size());
        bytes(s);
    }
    void null_string(std::string_view s) {
        bytes(s);
        out_.push_back(0);
    }
    void zeros(std::size_t n) { out_.insert(out_.end(), n, 0); }

private:
    std::vector<std::uint8_t>& out_;
};

std::size_t lenenc_size(std::uint64_t v) noexcept;

}  // namespace ambisql::proto
