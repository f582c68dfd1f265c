#include "proto/compress.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace ambisql::proto {

namespace {
std::size_t le24(const std::uint8_t* p) noexcept { return p[0] | (p[1] << 8) | (std::size_t(p[2]) << 16); }
void put24(std::uint8_t* p, std::size_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
    p[2] = static_cast<std::uint8_t>(v >> 16);
}
// Commands the server does not answer.
bool unanswered(std::uint8_t cmd) noexcept {
    return cmd == 0x01 /* QUIT */ || cmd == 0x18 /* STMT_SEND_LONG_DATA */ || cmd == 0x19 /* STMT_CLOSE */;
}
}  // namespace

void compressed_framing::reset() noexcept {
    pkt_left_ = 0;
    last_was_max_ = false;
    track_ = reply_ = false;
    send_seq_ = 0;
    expect_.clear();
    beg_ = end_ = 0;
    recv_seq_ = 0;
    new_response_ = false;
}

void compressed_framing::emit(const std::uint8_t* p, std::size_t n, std::vector<std::uint8_t>& out) {
    const std::size_t at = out.size();
    const bool try_zip = n >= min_compress;
    uLongf clen = try_zip ? compressBound(static_cast<uLong>(n)) : n;
    out.resize(at + header_size + clen);
    std::uint8_t* dst = out.data() + at;
    bool stored = true;
    if (try_zip && compress2(dst + header_size, &clen, p, static_cast<uLong>(n), level_) == Z_OK &&
        clen < n)
        stored = false;
    if (stored) {
        std::memcpy(dst + header_size, p, n);
        clen = n;
    }
    out.resize(at + header_size + clen);
    dst = out.data() + at;
    put24(dst, clen);
    dst[3] = send_seq_++;
    put24(dst + 4, stored ? 0 : n);
    if (track_) expect_.back() = send_seq_;  // the response is numbered on from here
    if (reply_) recv_seq_ = send_seq_;
}

std::size_t compressed_framing::compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
    std::size_t pos = 0;
    std::size_t frame = 0;  // the run not framed yet starts here
    while (pos < in.size()) {
        if (pkt_left_ == 0) {
            const std::size_t avail = in.size() - pos;
            if (avail < 4) break;
            const std::size_t len = le24(in.data() + pos);
            const std::uint8_t seq = in[pos + 3];
            if (!last_was_max_) {
                if (seq == 0) {
                    // A command: its frames of its own, numbered from 0.
                    if (len > 0 && avail < 5) break;
                    if (pos > frame) {
                        emit(in.data() + frame, pos - frame, out);
                        frame = pos;
                    }
                    send_seq_ = 0;
                    reply_ = false;
                    track_ = len == 0 || !unanswered(in[pos + 4]);
                    if (track_) expect_.push_back(0);
                } else {
                    // A reply within an exchange: numbered on from the last frame received.
                    if (!reply_ && pos > frame) {
                        emit(in.data() + frame, pos - frame, out);
                        frame = pos;
                    }
                    track_ = false;
                    reply_ = true;
                    send_seq_ = recv_seq_;
                }
            }
            last_was_max_ = len == max_chunk;
            pkt_left_ = 4 + len;
        }
        const std::size_t take = std::min({pkt_left_, in.size() - pos, max_chunk - (pos - frame)});
        pos += take;
        pkt_left_ -= take;
        if (pos - frame == max_chunk) {
            emit(in.data() + frame, pos - frame, out);
            frame = pos;
        }
    }
    if (pos > frame) emit(in.data() + frame, pos - frame, out);
    return pos;
}

std::span<std::uint8_t> compressed_framing::space() {
    std::size_t want = 64 * 1024;
    if (end_ - beg_ >= header_size) want = std::max(want, header_size + le24(in_.data() + beg_) - (end_ - beg_));
    if (beg_ == end_) beg_ = end_ = 0;
    if (in_.size() - end_ < want && beg_ > 0) {
        std::memmove(in_.data(), in_.data() + beg_, end_ - beg_);
        end_ -= beg_;
        beg_ = 0;
    }
    if (in_.size() - end_ < want) in_.resize(std::max(end_ + want, in_.size() + in_.size() / 2));
    return {in_.data() + end_, in_.size() - end_};
}

compressed_framing::status compressed_framing::next(packet_reader& dst, std::string& why) {
    const std::size_t avail = end_ - beg_;
    if (avail < header_size) return status::need_more;
    const std::uint8_t* p = in_.data() + beg_;
    const std::size_t clen = le24(p);
    const std::size_t ulen = le24(p + 4);
    if (avail - header_size < clen) return status::need_more;
    if (new_response_) {
        if (expect_.empty()) {
            why = "a compressed frame arrived while no command was waiting for an answer";
            return status::error;
        }
        recv_seq_ = expect_.front();
        expect_.pop_front();
        new_response_ = false;
    }
    if (p[3] != recv_seq_) {
        why = "compressed frame sequence mismatch (expected " + std::to_string(recv_seq_) + ", got " +
              std::to_string(p[3]) + "): the stream is out of step";
        return status::error;
    }
    ++recv_seq_;
    if (ulen == 0) {
        auto room = dst.space(clen);
        if (clen) std::memcpy(room.data(), p + header_size, clen);
        dst.commit(clen);
    } else {
        auto room = dst.space(ulen);
        uLongf got = ulen;
        int r = uncompress(room.data(), &got, p + header_size, static_cast<uLong>(clen));
        if (r != Z_OK || got != ulen) {
            why = r == Z_OK ? "malformed compressed frame: it inflates to " + std::to_string(got) + " bytes, not " +
                                  std::to_string(ulen)
                            : std::string("malformed compressed frame (zlib: ") + zError(r) + ")";
            return status::error;
        }
        dst.commit(ulen);
    }
    beg_ += header_size + clen;
    return status::ok;
}

}  // namespace ambisql::proto
