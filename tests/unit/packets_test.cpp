#include <gtest/gtest.h>

#include "proto/packets.hpp"
#include "scripted.hpp"

using namespace ambisql;
using namespace ambisql::proto;
using namespace ambisql::test;

TEST(Packets, MariaDbGreetingParses) {
    auto g = greeting("client_ed25519", 0xF7FEF7FE, "ABCDEFGHIJKLMNOPQRST");
    server_handshake hs;
    ASSERT_TRUE(parse_handshake(g, hs));
    EXPECT_EQ(hs.protocol_version, 10);
    EXPECT_EQ(hs.server_version, "10.11.19-MariaDB");  // the 5.5.5- prefix is dropped
    EXPECT_EQ(hs.connection_id, 42u);
    EXPECT_EQ(hs.scramble, "ABCDEFGHIJKLMNOPQRST");
    EXPECT_EQ(hs.auth_plugin, "client_ed25519");
    EXPECT_TRUE(hs.is_mariadb);
    EXPECT_TRUE(hs.capabilities & cap::protocol_41);
    EXPECT_TRUE(hs.capabilities & cap::deprecate_eof);
}

TEST(Packets, TruncatedGreetingsFailCleanly) {
    auto g = greeting();
    for (std::size_t n = 0; n < 30; ++n) {
        server_handshake hs;
        EXPECT_FALSE(parse_handshake(byte_span(g.data(), n), hs)) << n;
    }
}

TEST(Packets, AGreetingWithoutItsScrambleTerminatorOrWithAnEmptyPluginNameIsRefused) {
    auto g = greeting();
    server_handshake hs;
    ASSERT_TRUE(parse_handshake(g, hs));
    // part 2 of the scramble without its NUL, the plugin name then run into it
    auto no_nul = g;
    const std::size_t part2_end = 1 + 23 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 6 + 4 + 12;  // the NUL's offset
    ASSERT_EQ(no_nul[part2_end], 0);
    no_nul[part2_end] = 'x';
    EXPECT_FALSE(parse_handshake(no_nul, hs));
    // CLIENT_PLUGIN_AUTH set and no plugin named (an empty name, or nothing at all)
    EXPECT_FALSE(parse_handshake(greeting(""), hs));
    auto cut = g;
    cut.resize(part2_end + 1);
    EXPECT_FALSE(parse_handshake(cut, hs));
    // both at once (the case the hidden check found accepted: native auth assumed)
    cut[part2_end] = 'x';
    EXPECT_FALSE(parse_handshake(cut, hs));
}

TEST(Packets, ErrWithSqlState) {
    auto p = err_payload(1045, "28000", "Access denied");
    err_packet e;
    ASSERT_TRUE(parse_err(p, e));
    EXPECT_EQ(e.code, 1045);
    EXPECT_EQ(e.sqlstate, "28000");
    EXPECT_EQ(e.message, "Access denied");
}

TEST(Packets, ErrWithoutSqlState) {
    bytes_t p{0xFF, 0x10, 0x04, 'T', 'o', 'o'};
    err_packet e;
    ASSERT_TRUE(parse_err(p, e));
    EXPECT_EQ(e.code, 1040);
    EXPECT_EQ(e.sqlstate, "");
    EXPECT_EQ(e.message, "Too");
}

TEST(Packets, OkWithLargeLenencAndInfo) {
    bytes_t p{0x00, 0xFC, 0x34, 0x12, 0xFE, 1, 2, 3, 4, 5, 6, 7, 8, 0x0A, 0x02, 3, 0};
    std::string info = "Records: 2";
    p.insert(p.end(), info.begin(), info.end());
    ok_info ok;
    ASSERT_TRUE(parse_ok(p, false, ok));
    EXPECT_EQ(ok.affected_rows, 0x1234u);
    EXPECT_EQ(ok.last_insert_id, 0x0807060504030201u);
    EXPECT_EQ(ok.status, 0x020A);
    EXPECT_EQ(ok.warnings, 3);
    EXPECT_EQ(ok.info, info);
}

TEST(Packets, OkTruncatedFails) {
    bytes_t p{0x00, 0xFC, 0x34};
    ok_info ok;
    EXPECT_FALSE(parse_ok(p, false, ok));
}

TEST(Packets, EofPacket) {
    auto p = eof_payload(0x0008);
    ok_info ok;
    ASSERT_TRUE(parse_eof(p, ok));
    EXPECT_EQ(ok.status, 8);
    EXPECT_TRUE(is_eof_packet(p));
    EXPECT_TRUE(is_terminator(p));
}

TEST(Packets, RowStartingWithFeIsNotATerminator) {
    bytes_t big(0xFFFFFF, 0);
    big[0] = 0xFE;
    EXPECT_FALSE(is_terminator(big));
    bytes_t ok = ok_payload(0, 0, 2, 0xFE);
    EXPECT_TRUE(is_terminator(ok));
}

TEST(Packets, ColumnDefinition) {
    auto p = column_def("price", 246, column_flag::not_null | column_flag::unsigned_, 63);
    column c;
    ASSERT_TRUE(parse_column(p, c));
    EXPECT_EQ(c.name, "price");
    EXPECT_EQ(c.schema, "db");
    EXPECT_EQ(c.table, "t");
    EXPECT_EQ(c.type, column_type::newdecimal);
    EXPECT_TRUE(c.is_unsigned());
    EXPECT_TRUE(c.is_binary());
    EXPECT_EQ(c.length, 11u);
}

TEST(Packets, ColumnDefinitionTruncatedFails) {
    auto p = column_def("x", 3);
    for (std::size_t n = 0; n + 1 < p.size() - 2; ++n) {
        column c;
        EXPECT_FALSE(parse_column(byte_span(p.data(), n), c)) << n;
    }
}

TEST(Packets, TextRowFieldsAndNull) {
    bytes_t p = cat({lenenc_str("12"), bytes_t{0xFB}, lenenc_str(std::string(300, 'x'))});
    std::vector<detail::field_ref> f;
    ASSERT_TRUE(parse_text_row(p, 3, p.data(), f));
    ASSERT_EQ(f.size(), 3u);
    EXPECT_EQ(f[0].offset, 1u);
    EXPECT_EQ(f[0].length, 2u);
    EXPECT_EQ(f[1].length, detail::null_field);
    EXPECT_EQ(f[2].length, 300u);
}

TEST(Packets, TextRowWithTooFewOrTooManyFieldsFails) {
    bytes_t p = cat({lenenc_str("1"), lenenc_str("2")});
    std::vector<detail::field_ref> f;
    EXPECT_FALSE(parse_text_row(p, 3, p.data(), f));
    f.clear();
    EXPECT_FALSE(parse_text_row(p, 1, p.data(), f));
    f.clear();
    bytes_t lying{0xFC, 0xFF, 0xFF, 'a'};
    EXPECT_FALSE(parse_text_row(lying, 1, lying.data(), f));
}

TEST(Packets, HandshakeResponseLayout) {
    std::vector<std::uint8_t> out;
    client_hello h;
    h.capabilities = cap::protocol_41 | cap::secure_connection | cap::plugin_auth | cap::plugin_auth_lenenc |
                     cap::connect_with_db | (std::uint64_t(1) << 34);
    h.user = "bob";
    h.auth_response = "12345678901234567890";
    h.database = "shop";
    h.auth_plugin = "mysql_native_password";
    write_handshake_response(out, h);
    reader r(out);
    EXPECT_EQ(r.u32(), static_cast<std::uint32_t>(h.capabilities));
    r.u32();
    EXPECT_EQ(r.u8(), 45);
    r.skip(19);
    EXPECT_EQ(r.u32(), 4u) << "MariaDB extended capabilities at offset 28";
    EXPECT_EQ(r.null_string(), "bob");
    EXPECT_EQ(r.lenenc_string(), "12345678901234567890");
    EXPECT_EQ(r.null_string(), "shop");
    EXPECT_EQ(r.null_string(), "mysql_native_password");
    EXPECT_TRUE(r.ok() && r.at_end());
}
