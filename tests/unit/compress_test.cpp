// The compressed framing layer (CLIENT_COMPRESS), with byte vectors: frames out of
// packets, packets out of frames, and the frames' sequence numbering.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <random>

#include "proto/compress.hpp"
#include "scripted.hpp"

using namespace ambisql;
using namespace ambisql::proto;

namespace {

using octets = std::vector<std::uint8_t>;

std::size_t le24(const std::uint8_t* p) { return p[0] | (p[1] << 8) | (std::size_t(p[2]) << 16); }

// A packet: header + payload.
octets packet(std::uint8_t seq, const octets& payload) {
    octets b{static_cast<std::uint8_t>(payload.size()), static_cast<std::uint8_t>(payload.size() >> 8),
            static_cast<std::uint8_t>(payload.size() >> 16), seq};
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}
octets cmd_packet(std::uint8_t cmd, std::size_t n, std::uint8_t fill = 'a') {
    octets p(n + 1, fill);
    p[0] = cmd;
    return packet(0, p);
}
octets cat(octets a, const octets& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

struct frame {
    std::size_t clen, ulen;
    std::uint8_t seq;
    octets data;  // inflated payload
};

// Splits `wire` into frames, inflating each with zlib directly.
std::vector<frame> frames(const octets& wire) {
    std::vector<frame> out;
    std::size_t pos = 0;
    while (pos < wire.size()) {
        EXPECT_GE(wire.size() - pos, 7u);
        frame f{le24(&wire[pos]), le24(&wire[pos + 4]), wire[pos + 3], {}};
        const std::uint8_t* p = &wire[pos + 7];
        if (f.ulen == 0) {
            f.data.assign(p, p + f.clen);
        } else {
            f.data.resize(f.ulen);
            uLongf n = f.ulen;
            EXPECT_EQ(uncompress(f.data.data(), &n, p, f.clen), Z_OK);
            EXPECT_EQ(n, f.ulen);
        }
        pos += 7 + f.clen;
        out.push_back(std::move(f));
    }
    EXPECT_EQ(pos, wire.size());
    return out;
}

// A frame as a server would send it (compressed when `zip`).
octets server_frame(std::uint8_t seq, const octets& payload, bool zip) {
    octets body = payload;
    std::size_t ulen = 0;
    if (zip) {
        uLongf n = compressBound(payload.size());
        body.resize(n);
        EXPECT_EQ(compress(body.data(), &n, payload.data(), payload.size()), Z_OK);
        body.resize(n);
        ulen = payload.size();
    }
    octets f{static_cast<std::uint8_t>(body.size()), static_cast<std::uint8_t>(body.size() >> 8),
            static_cast<std::uint8_t>(body.size() >> 16), seq, static_cast<std::uint8_t>(ulen),
            static_cast<std::uint8_t>(ulen >> 8), static_cast<std::uint8_t>(ulen >> 16)};
    return cat(f, body);
}

// Feeds `wire` to the framing layer and returns what next() said, with the packets'
// octets in `got`.
compressed_framing::status receive(compressed_framing& z, const octets& wire, octets& got, std::string& why) {
    auto room = z.space();
    EXPECT_GE(room.size(), wire.size());
    std::memcpy(room.data(), wire.data(), wire.size());
    z.commit(wire.size());
    packet_reader r;
    compressed_framing::status st;
    while ((st = z.next(r, why)) == compressed_framing::status::ok) {
    }
    got.assign(r.base(), r.base() + r.buffered());
    return st;
}

}  // namespace

TEST(CompressedFraming, ShortCommandGoesInOneStoredFrame) {
    compressed_framing z;
    octets ping = cmd_packet(0x0e, 0);
    octets wire;
    EXPECT_EQ(z.compress(ping, wire), ping.size());
    ASSERT_EQ(wire.size(), 7 + ping.size());
    EXPECT_EQ(le24(&wire[0]), ping.size()) << "payload length";
    EXPECT_EQ(wire[3], 0) << "a command's first frame is number 0";
    EXPECT_EQ(le24(&wire[4]), 0u) << "uncompressed length 0: stored as is";
    EXPECT_TRUE(std::equal(ping.begin(), ping.end(), wire.begin() + 7));
}

TEST(CompressedFraming, LongCommandIsDeflated) {
    compressed_framing z;
    octets q = cmd_packet(0x03, 1000);
    octets wire;
    z.compress(q, wire);
    auto f = frames(wire);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].ulen, q.size());
    EXPECT_LT(f[0].clen, q.size() / 10) << "1000 equal octets deflate well";
    EXPECT_EQ(f[0].data, q);
}

TEST(CompressedFraming, IncompressibleBytesAreStored) {
    compressed_framing z;
    std::mt19937 rng(1);
    octets p(5000);
    for (auto& b : p) b = static_cast<std::uint8_t>(rng());
    p[0] = 0x03;
    octets q = packet(0, p), wire;
    z.compress(q, wire);
    auto f = frames(wire);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].ulen, 0u) << "deflate would not make it smaller";
    EXPECT_EQ(f[0].data, q);
}

TEST(CompressedFraming, EachCommandHasFramesOfItsOwnNumberedFromZero) {
    compressed_framing z;
    // A STMT_CLOSE (no response), a PREPARE and an EXECUTE written in one go.
    octets run = cat(cat(cmd_packet(0x19, 4), cmd_packet(0x16, 60)), cmd_packet(0x17, 9));
    octets wire;
    EXPECT_EQ(z.compress(run, wire), run.size());
    auto f = frames(wire);
    ASSERT_EQ(f.size(), 3u);
    for (auto& fr : f) EXPECT_EQ(fr.seq, 0);
    EXPECT_EQ(cat(cat(f[0].data, f[1].data), f[2].data), run);

    // The prepare's answer (the close has none) starts at 1, then the execute's at 1.
    std::string why;
    octets got;
    z.response_begins();
    EXPECT_EQ(receive(z, server_frame(1, packet(1, {0x00, 1, 2}), false), got, why),
              compressed_framing::status::need_more);
    EXPECT_EQ(got, packet(1, {0x00, 1, 2}));
    z.response_begins();
    EXPECT_EQ(receive(z, server_frame(2, packet(1, {0x00}), false), got, why), compressed_framing::status::error)
        << "the execute's answer must be numbered 1";
    EXPECT_NE(why.find("sequence"), std::string::npos) << why;
}

TEST(CompressedFraming, ResponsesContinueTheNumbering) {
    compressed_framing z;
    octets wire, got;
    std::string why;
    z.compress(cmd_packet(0x03, 10), wire);
    z.response_begins();
    octets both = cat(server_frame(1, packet(1, octets(100, 'x')), true), server_frame(2, packet(2, {0xfe, 0, 0}), false));
    EXPECT_EQ(receive(z, both, got, why), compressed_framing::status::need_more) << why;
    EXPECT_EQ(got, cat(packet(1, octets(100, 'x')), packet(2, {0xfe, 0, 0})));
    // A frame that repeats a number is refused.
    EXPECT_EQ(receive(z, server_frame(2, packet(3, {0}), false), got, why), compressed_framing::status::error);
}

TEST(CompressedFraming, PacketsLargerThanAFrameSpanSeveralFrames) {
    compressed_framing z;
    // A 20 MiB payload: chunks of 0xFFFFFF and the rest, as end_packet writes them.
    const std::size_t total = 20u << 20;
    octets payload(total, 'q');
    payload[0] = 0x03;
    octets first(payload.begin(), payload.begin() + max_chunk), rest(payload.begin() + max_chunk, payload.end());
    octets run = cat(packet(0, first), packet(1, rest));
    octets wire;
    EXPECT_EQ(z.compress(run, wire), run.size());
    auto f = frames(wire);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].seq, 0);
    EXPECT_EQ(f[1].seq, 1) << "a command's later frames count on";
    EXPECT_EQ(f[0].data.size(), max_chunk) << "a frame carries at most 0xFFFFFF octets";
    EXPECT_EQ(cat(f[0].data, f[1].data), run);
    // The server answers on from the request's last frame.
    octets got;
    std::string why;
    z.response_begins();
    EXPECT_EQ(receive(z, server_frame(2, packet(2, {0x00, 0, 0}), false), got, why),
              compressed_framing::status::need_more)
        << why;
}

TEST(CompressedFraming, RunsEndingInsideAPacketContinueTheCommandsFrames) {
    compressed_framing z;
    octets q = cmd_packet(0x03, 300), wire;
    // Cut inside the header first: nothing can be framed before the header is whole.
    EXPECT_EQ(z.compress({q.data(), 3}, wire), 0u);
    EXPECT_TRUE(wire.empty());
    // Cut inside the payload: the first part goes now, the rest in the command's next frame.
    EXPECT_EQ(z.compress({q.data(), 100}, wire), 100u);
    EXPECT_EQ(z.compress({q.data() + 100, q.size() - 100}, wire), q.size() - 100);
    auto f = frames(wire);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].seq, 0);
    EXPECT_EQ(f[1].seq, 1);
    EXPECT_EQ(cat(f[0].data, f[1].data), q);
    octets got;
    std::string why;
    z.response_begins();
    EXPECT_EQ(receive(z, server_frame(1, packet(1, {0}), false), got, why), compressed_framing::status::error)
        << "two frames went out: the answer starts at 2";
}

TEST(CompressedFraming, RepliesWithinAnExchangeCountOnFromTheLastFrameReceived) {
    // LOCAL INFILE: query (frame 0), the server's request (frame 1), the file's packets
    // (frame 2), the server's OK (frame 3).
    compressed_framing z;
    octets wire, got;
    std::string why;
    z.compress(cmd_packet(0x03, 40), wire);
    z.response_begins();
    ASSERT_EQ(receive(z, server_frame(1, packet(1, {0xfb, 'f'}), false), got, why),
              compressed_framing::status::need_more);
    wire.clear();
    octets data = cat(packet(2, octets(2000, 'd')), packet(3, {}));
    EXPECT_EQ(z.compress(data, wire), data.size());
    auto f = frames(wire);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].seq, 2);
    EXPECT_EQ(f[0].data, data);
    EXPECT_EQ(receive(z, server_frame(3, packet(4, {0x00, 1, 0}), false), got, why),
              compressed_framing::status::need_more)
        << why;
}

TEST(CompressedFraming, FramesCarryPartsOfPacketsAndSeveralPackets) {
    compressed_framing z;
    octets wire, got;
    std::string why;
    z.compress(cmd_packet(0x03, 5), wire);
    z.response_begins();
    octets stream = cat(cat(packet(1, {1}), packet(2, octets(300, 'c'))), packet(3, octets(500, 'e')));
    // Frame 1: two packets and part of the third; frame 2: the rest.
    octets a(stream.begin(), stream.begin() + 500), b(stream.begin() + 500, stream.end());
    octets wire_in = cat(server_frame(1, a, true), server_frame(2, b, false));
    // Byte by byte: nothing comes out before a frame is whole.
    packet_reader r;
    std::size_t frames_out = 0;
    for (std::uint8_t byte : wire_in) {
        auto room = z.space();
        room[0] = byte;
        z.commit(1);
        auto st = z.next(r, why);
        ASSERT_NE(st, compressed_framing::status::error) << why;
        if (st == compressed_framing::status::ok) ++frames_out;
    }
    EXPECT_EQ(frames_out, 2u);
    EXPECT_EQ(octets(r.base(), r.base() + r.buffered()), stream);
    r.set_check_sequence(false);
    byte_span p;
    std::uint8_t seq = 0;
    errc e{};
    std::vector<std::size_t> sizes;
    while (r.next(p, seq, e) == packet_reader::status::ok) sizes.push_back(p.size());
    EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 300, 500}));
}

TEST(CompressedFraming, MalformedFramesAreRefused) {
    auto fresh = [] {
        compressed_framing z;
        octets w;
        z.compress(cmd_packet(0x03, 5), w);
        z.response_begins();
        return z;
    };
    octets got;
    std::string why;
    {  // not deflate data at all
        auto z = fresh();
        octets f = server_frame(1, octets(100, 'z'), true);
        for (std::size_t i = 7; i < f.size(); ++i) f[i] ^= 0x5a;
        EXPECT_EQ(receive(z, f, got, why), compressed_framing::status::error);
        EXPECT_NE(why.find("malformed compressed frame"), std::string::npos) << why;
    }
    {  // inflates to fewer octets than the header says
        auto z = fresh();
        octets f = server_frame(1, octets(100, 'z'), true);
        f[4] = 101;
        EXPECT_EQ(receive(z, f, got, why), compressed_framing::status::error);
    }
    {  // inflates to more octets than the header says
        auto z = fresh();
        octets f = server_frame(1, octets(100, 'z'), true);
        f[4] = 99;
        EXPECT_EQ(receive(z, f, got, why), compressed_framing::status::error);
    }
    {  // a frame nobody asked for
        compressed_framing z;
        z.response_begins();
        EXPECT_EQ(receive(z, server_frame(0, packet(0, {0}), false), got, why), compressed_framing::status::error);
    }
}

namespace {

// A scripted session with compression negotiated (the greeting offers CLIENT_COMPRESS).
struct compressed_session {
    test::scripted t;
    config cfg = test::scripted_config();
    compressed_session() {
        cfg.compress = true;
        t.connect(cfg);
    }
    // SELECT 1's answer, as packets.
    static octets answer() {
        octets def = test::column_def("a", 3);
        return cat(cat(cat(packet(1, {1}), packet(2, def)), packet(3, {1, '1'})),
                   packet(4, {0xfe, 0, 0, 2, 0, 0, 0}));
    }
};

}  // namespace

TEST(CompressedSession, AQueryGoesOutAndComesBackInFrames) {
    compressed_session c;
    EXPECT_TRUE(c.t.s.compressed());
    EXPECT_EQ(c.t.s.capabilities() & 32, 32u) << "CLIENT_COMPRESS negotiated";
    results r;
    ASSERT_TRUE(c.t.s.start_query("SELECT 1", &r));
    ASSERT_EQ(c.t.run(), next_action::read);
    auto f = frames(c.t.sent);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].seq, 0);
    EXPECT_EQ(f[0].data, cat(octets{9, 0, 0, 0, 0x03}, octets{'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'}));
    octets a = compressed_session::answer();
    // Split across a deflated frame and a stored one, delivered 3 octets at a time.
    octets wire = cat(server_frame(1, octets(a.begin(), a.begin() + 20), true), server_frame(2, octets(a.begin() + 20, a.end()), false));
    EXPECT_EQ(c.t.feed(wire, 3), next_action::done);
    ASSERT_FALSE(c.t.s.failed()) << c.t.s.diag().message;
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r.row(0)[0].as<int>(), 1);
    // The next command's frames are numbered from 0 again.
    c.t.sent.clear();
    ASSERT_TRUE(c.t.s.start_ping());
    c.t.run();
    EXPECT_EQ(frames(c.t.sent).at(0).seq, 0);
    EXPECT_EQ(c.t.feed(server_frame(1, packet(1, {0, 0, 0, 2, 0, 0, 0}), false)), next_action::done);
    EXPECT_FALSE(c.t.s.failed()) << c.t.s.diag().message;
}

TEST(CompressedSession, BadFramesFailTheConnectionWithAClearError) {
    for (int kind = 0; kind < 2; ++kind) {
        compressed_session c;
        results r;
        ASSERT_TRUE(c.t.s.start_query("SELECT 1", &r));
        c.t.run();
        octets wire = kind == 0 ? server_frame(2, compressed_session::answer(), false)  // out of step
                               : server_frame(1, compressed_session::answer(), true);
        if (kind == 1) wire[9] ^= 0xff;  // corrupt the deflate stream
        EXPECT_EQ(c.t.feed(wire), next_action::done);
        EXPECT_TRUE(c.t.s.failed());
        EXPECT_TRUE(c.t.s.broken());
        EXPECT_EQ(c.t.s.diag().kind, error_kind::protocol);
        EXPECT_NE(c.t.s.diag().message.find(kind == 0 ? "sequence" : "malformed compressed frame"), std::string::npos)
            << c.t.s.diag().message;
    }
}
