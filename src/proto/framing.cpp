#include "proto/framing.hpp"

#include <algorithm>
#include <cstring>

namespace ambisql::proto {

namespace {
constexpr std::size_t header = 4;
constexpr std::size_t default_room = 65536;

std::size_t le24(const std::uint8_t* p) noexcept { return p[0] | (p[1] << 8) | (std::size_t(p[2]) << 16); }
}  // namespace

std::span<std::uint8_t> packet_reader::space(std::size_t min) {
    std::size_t want = std::max({min, missing_, default_room});
    if (beg_ == end_) beg_ = end_ = 0;
    if (buf_.size() - end_ < want && beg_ > 0) {
        std::memmove(buf_.data(), buf_.data() + beg_, end_ - beg_);
        end_ -= beg_;
        beg_ = 0;
    }
    if (buf_.size() - end_ < want) {
        std::size_t need = end_ + want;
        std::size_t grow = std::max(need, buf_.size() + buf_.size() / 2);
        buf_.resize(grow);
    }
    return {buf_.data() + end_, buf_.size() - end_};
}

packet_reader::status packet_reader::next(byte_span& payload, std::uint8_t& seq, errc& err) noexcept {
    std::size_t avail = end_ - beg_;
    const std::uint8_t* p = buf_.data() + beg_;
    if (avail < header) {
        missing_ = header - avail;
        return status::need_more;
    }
    std::size_t len = le24(p);
    if (len < max_chunk) {  // the common case: a single chunk
        if (len > max_packet_) {
            err = errc::packet_too_large;
            return status::error;
        }
        if (avail < header + len) {
            missing_ = header + len - avail;
            return status::need_more;
        }
        if (p[3] != seq) {
            if (check_seq_) {
                err = errc::sequence_mismatch;
                return status::error;
            }
            seq = p[3];
        }
        ++seq;
        payload = byte_span(p + header, len);
        beg_ += header + len;
        missing_ = 0;
        return status::ok;
    }
    // A multi-chunk packet: all chunks must be buffered before it is reassembled.
    std::size_t pos = 0, total = 0;
    std::uint8_t s = seq;
    for (;;) {
        if (avail - pos < header) {
            missing_ = header - (avail - pos);
            return status::need_more;
        }
        std::size_t l = le24(p + pos);
        if (p[pos + 3] != s) {
            if (check_seq_) {
                err = errc::sequence_mismatch;
                return status::error;
            }
            s = p[pos + 3];
        }
        ++s;
        total += l;
        if (total > max_packet_) {
            err = errc::packet_too_large;
            return status::error;
        }
        if (avail - pos - header < l) {
            missing_ = l - (avail - pos - header);
            return status::need_more;
        }
        pos += header + l;
        if (l < max_chunk) break;
    }
    // Move every later chunk's data down over the header before it.
    std::uint8_t* base = buf_.data() + beg_;
    std::size_t write = header + max_chunk, read = header + max_chunk;
    for (;;) {
        std::size_t l = le24(base + read);
        std::memmove(base + write, base + read + header, l);
        write += l;
        read += header + l;
        if (l < max_chunk) break;
    }
    seq = s;
    payload = byte_span(base + header, total);
    beg_ += pos;
    missing_ = 0;
    return status::ok;
}

std::size_t begin_packet(std::vector<std::uint8_t>& out) {
    std::size_t start = out.size();
    out.resize(start + header);
    return start;
}

void end_packet(std::vector<std::uint8_t>& out, std::size_t start, std::uint8_t& seq) {
    std::size_t len = out.size() - start - header;
    if (len < max_chunk) {
        out[start] = static_cast<std::uint8_t>(len);
        out[start + 1] = static_cast<std::uint8_t>(len >> 8);
        out[start + 2] = static_cast<std::uint8_t>(len >> 16);
        out[start + 3] = seq++;
        return;
    }
    // Split: k full chunks and a final shorter one (possibly empty), each with a header.
    std::size_t k = len / max_chunk;
    std::size_t last = len - k * max_chunk;
    out.resize(out.size() + k * header);
    std::uint8_t* base = out.data() + start;
    // Move chunks from the back so nothing is overwritten before it has moved.
    std::size_t src_end = header + len;          // end of payload in its old place
    std::size_t dst_end = header + len + k * header;
    for (std::size_t i = k + 1; i-- > 0;) {
        std::size_t l = i == k ? last : max_chunk;
        std::size_t src = src_end - l;
        std::size_t dst = dst_end - l;
        std::memmove(base + dst, base + src, l);
        std::size_t h = dst - header;
        base[h] = static_cast<std::uint8_t>(l);
        base[h + 1] = static_cast<std::uint8_t>(l >> 8);
        base[h + 2] = static_cast<std::uint8_t>(l >> 16);
        src_end = src;
        dst_end = h;
    }
    // Sequence ids in order from the front.
    std::size_t pos = 0;
    for (std::size_t i = 0; i <= k; ++i) {
        base[pos + 3] = seq++;
        pos += header + (i == k ? last : max_chunk);
    }
}

}  // namespace ambisql::proto
