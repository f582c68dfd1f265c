#include <gtest/gtest.h>

#include <cstring>

#include "proto/framing.hpp"

using namespace ambisql;
using namespace ambisql::proto;

namespace {

// Frames `len` bytes of a pattern with end_packet, reads them back with packet_reader,
// delivered in pieces of `piece` bytes.
void round_trip(std::size_t len, std::size_t piece) {
    std::vector<std::uint8_t> out;
    std::size_t start = begin_packet(out);
    for (std::size_t i = 0; i < len; ++i) out.push_back(static_cast<std::uint8_t>(i * 7 + (i >> 16)));
    std::uint8_t wseq = 3;
    end_packet(out, start, wseq);
    const std::size_t chunks = len / max_chunk + 1;
    ASSERT_EQ(out.size(), len + 4 * chunks) << "one header per chunk";
    ASSERT_EQ(wseq, static_cast<std::uint8_t>(3 + chunks));

    packet_reader r;
    std::uint8_t rseq = 3;
    std::size_t fed = 0;
    byte_span payload;
    errc err{};
    for (;;) {
        auto st = r.next(payload, rseq, err);
        if (st == packet_reader::status::ok) break;
        ASSERT_EQ(st, packet_reader::status::need_more);
        ASSERT_LT(fed, out.size()) << "reader wants more than was framed";
        auto space = r.space();
        std::size_t n = std::min({piece, space.size(), out.size() - fed});
        std::memcpy(space.data(), out.data() + fed, n);
        r.commit(n);
        fed += n;
    }
    EXPECT_EQ(fed, out.size());
    ASSERT_EQ(payload.size(), len);
    EXPECT_EQ(rseq, wseq);
    for (std::size_t i = 0; i < len; ++i) {
        if (payload[i] != static_cast<std::uint8_t>(i * 7 + (i >> 16))) {
            FAIL() << "byte " << i << " differs";
        }
    }
}

}  // namespace

TEST(Framing, SmallPacketsRoundTripByteByByte) {
    round_trip(0, 1);
    round_trip(1, 1);
    round_trip(300, 1);
}

TEST(Framing, PayloadOneBelowChunkIsOneChunk) { round_trip(max_chunk - 1, 1 << 20); }
TEST(Framing, PayloadOfExactlyChunkEndsWithEmptyChunk) { round_trip(max_chunk, 1 << 20); }
TEST(Framing, PayloadOneAboveChunkIsTwoChunks) { round_trip(max_chunk + 1, 1 << 20); }
TEST(Framing, PayloadOfTwoChunksEndsWithEmptyChunk) { round_trip(2 * max_chunk, 3 << 20); }
TEST(Framing, TwentyMiBInOddPieces) { round_trip(20 << 20, 65521); }

TEST(Framing, ExactChunkHeadersAreFullThenEmpty) {
    std::vector<std::uint8_t> out;
    std::size_t start = begin_packet(out);
    out.resize(out.size() + max_chunk, 0xAB);
    std::uint8_t seq = 0;
    end_packet(out, start, seq);
    ASSERT_EQ(out.size(), max_chunk + 8);
    EXPECT_EQ(out[0], 0xFF);
    EXPECT_EQ(out[1], 0xFF);
    EXPECT_EQ(out[2], 0xFF);
    EXPECT_EQ(out[3], 0);
    const std::uint8_t* last = out.data() + 4 + max_chunk;
    EXPECT_EQ(last[0], 0);
    EXPECT_EQ(last[1], 0);
    EXPECT_EQ(last[2], 0);
    EXPECT_EQ(last[3], 1);
}

TEST(Framing, SequenceMismatchIsAnError) {
    packet_reader r;
    const std::uint8_t pkt[] = {1, 0, 0, 5, 0x00};
    auto sp = r.space();
    std::memcpy(sp.data(), pkt, sizeof pkt);
    r.commit(sizeof pkt);
    std::uint8_t seq = 4;
    byte_span p;
    errc err{};
    EXPECT_EQ(r.next(p, seq, err), packet_reader::status::error);
    EXPECT_EQ(err, errc::sequence_mismatch);
}

TEST(Framing, SequenceMismatchInALaterChunkIsAnError) {
    std::vector<std::uint8_t> out;
    std::size_t start = begin_packet(out);
    out.resize(out.size() + max_chunk + 10, 1);
    std::uint8_t seq = 0;
    end_packet(out, start, seq);
    out[4 + max_chunk + 3] = 9;  // second chunk's id
    packet_reader r;
    auto sp = r.space(out.size());
    std::memcpy(sp.data(), out.data(), out.size());
    r.commit(out.size());
    std::uint8_t rseq = 0;
    byte_span p;
    errc err{};
    EXPECT_EQ(r.next(p, rseq, err), packet_reader::status::error);
    EXPECT_EQ(err, errc::sequence_mismatch);
}

TEST(Framing, SequenceWrapsAt256) {
    packet_reader r;
    std::vector<std::uint8_t> out;
    std::uint8_t wseq = 255;
    for (int i = 0; i < 2; ++i) {
        std::size_t s = begin_packet(out);
        out.push_back(static_cast<std::uint8_t>(i));
        end_packet(out, s, wseq);
    }
    EXPECT_EQ(out[3], 255);
    EXPECT_EQ(out[8], 0);
    auto sp = r.space();
    std::memcpy(sp.data(), out.data(), out.size());
    r.commit(out.size());
    std::uint8_t seq = 255;
    byte_span p;
    errc err{};
    ASSERT_EQ(r.next(p, seq, err), packet_reader::status::ok);
    ASSERT_EQ(r.next(p, seq, err), packet_reader::status::ok);
    EXPECT_EQ(seq, 1);
}

TEST(Framing, OversizedPacketIsRefused) {
    std::vector<std::uint8_t> out;
    std::size_t start = begin_packet(out);
    out.resize(out.size() + max_chunk + 100, 0);
    std::uint8_t seq = 0;
    end_packet(out, start, seq);
    packet_reader r;
    r.set_max_packet(max_chunk + 50);
    auto sp = r.space(out.size());
    std::memcpy(sp.data(), out.data(), out.size());
    r.commit(out.size());
    std::uint8_t rseq = 0;
    byte_span p;
    errc err{};
    EXPECT_EQ(r.next(p, rseq, err), packet_reader::status::error);
    EXPECT_EQ(err, errc::packet_too_large);
}
