#pragma once
// Protocol compression (CLIENT_COMPRESS, zlib): an outer framing layer between the packets
// and the transport (the socket, or TLS). A frame is a 7-byte header (payload length 3,
// sequence id 1, uncompressed length 3; 0 = stored as is) and a payload that carries any
// run of packet bytes: part of a packet, or several.
//
// Sequence ids of frames start at 0 with each command and are counted apart from the
// packets' own ids (which nobody checks once compression is on). The server reads a
// command's frames one by one, so each command goes out in frames of its own; a response
// is numbered on from the frames of its request (one frame: the response starts at 1),
// and a reply within an exchange (LOCAL INFILE data) on from the last frame received.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "proto/framing.hpp"

namespace ambisql::proto {

class compressed_framing {
public:
    static constexpr std::size_t header_size = 7;
    static constexpr std::size_t min_compress = 50;  // shorter frames are stored as is

    // ---- sending: packet bytes (as the session writes them; a run may end inside a
    // packet) become frames appended to `out`. Returns how many bytes of `in` were taken:
    // all but an unfinished packet header at the end, which waits for the rest.
    std::size_t compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);

    // ---- receiving: frames arrive in space()/commit(); next() moves the payload of the
    // next whole frame into `dst`.
    std::span<std::uint8_t> space();
    void commit(std::size_t n) noexcept { end_ += n; }
    enum class status { ok, need_more, error };
    status next(packet_reader& dst, std::string& why);
    // The session is about to read the response to its next outstanding command.
    void response_begins() noexcept { new_response_ = true; }

    void reset() noexcept;
    void set_level(int level) noexcept { level_ = level < 1 ? 1 : level > 9 ? 9 : level; }

private:
    void emit(const std::uint8_t* p, std::size_t n, std::vector<std::uint8_t>& out);

    // sending
    std::size_t pkt_left_ = 0;     // bytes of the current packet (header included) not framed yet
    bool last_was_max_ = false;    // the packet before was a 0xFFFFFF chunk: the next continues it
    bool track_ = false;           // frames count towards the current command's response
    bool reply_ = false;           // frames are a reply within an exchange
    std::uint8_t send_seq_ = 0;
    int level_ = 1;
    std::deque<std::uint8_t> expect_;  // where the responses of the commands sent will start

    // receiving
    std::vector<std::uint8_t, uninit_allocator<std::uint8_t>> in_;
    std::size_t beg_ = 0;
    std::size_t end_ = 0;
    std::uint8_t recv_seq_ = 0;
    bool new_response_ = false;
};

}  // namespace ambisql::proto
