#pragma once
// Packet framing: 3-byte length + 1-byte sequence id. Payloads of 0xFFFFFF bytes or more
// travel as 0xFFFFFF-byte chunks ended by a shorter (possibly empty) chunk.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "ambisql/error.hpp"
#include "proto/wire.hpp"

namespace ambisql::proto {

inline constexpr std::size_t max_chunk = 0xFFFFFF;
// The largest packet the protocol allows (max_allowed_packet's ceiling); buffers holding
// a packet stay far below the 4 GiB that 32-bit field offsets address.
inline constexpr std::size_t max_packet_limit = std::size_t(1) << 30;

// An allocator whose value-initialisation leaves bytes uninitialised: a receive buffer
// grown to a large packet's size is written by the socket, not zero-filled first.
template <class T>
struct uninit_allocator : std::allocator<T> {
    using std::allocator<T>::allocator;
    template <class U>
    struct rebind {
        using other = uninit_allocator<U>;
    };
    template <class U, class... A>
    void construct(U* p, A&&... a) {
        if constexpr (sizeof...(A) == 0)
            ::new (static_cast<void*>(p)) U;
        else
            ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
    }
};

// The plaintext input buffer: bytes arrive at the end, whole packets leave at the front.
// A multi-chunk packet is reassembled in place, so payloads are always contiguous views.
class packet_reader {
public:
    enum class status { ok, need_more, error };

    // Room for at least `min` more bytes at the end (compacts or grows the buffer; this
    // invalidates payload views handed out earlier).
    std::span<std::uint8_t> space(std::size_t min = 0);
    void commit(std::size_t n) noexcept { end_ += n; }

    // Takes the next whole packet. `seq` is the expected sequence id of its first chunk
    // and is advanced past its last chunk. On error, `err` says why.
    status next(byte_span& payload, std::uint8_t& seq, errc& err) noexcept;

    // Bytes still missing to complete the packet at the front (0 when unknown).
    std::size_t missing() const noexcept { return missing_; }
    std::size_t buffered() const noexcept { return end_ - beg_; }
    const std::uint8_t* base() const noexcept { return buf_.data(); }
    void set_max_packet(std::size_t m) noexcept { max_packet_ = m; }
    // Under protocol compression the packets' own sequence ids are not checked (the
    // frames' are); `seq` then follows the ids received.
    void set_check_sequence(bool on) noexcept { check_seq_ = on; }
    void reset() noexcept { beg_ = end_ = missing_ = 0; }

private:
    std::vector<std::uint8_t, uninit_allocator<std::uint8_t>> buf_;  // grown without zero-filling
    std::size_t beg_ = 0;
    std::size_t end_ = 0;
    std::size_t missing_ = 0;
    std::size_t max_packet_ = std::size_t(1) << 30;
    bool check_seq_ = true;
};

// Starts a packet in `out`: reserves the header and returns where it starts.
std::size_t begin_packet(std::vector<std::uint8_t>& out);
// Ends the packet started at `start`: writes the header(s), splitting the payload into
// chunks when it is 0xFFFFFF bytes or more, and advances `seq` once per chunk.
void end_packet(std::vector<std::uint8_t>& out, std::size_t start, std::uint8_t& seq);

}  // namespace ambisql::proto
