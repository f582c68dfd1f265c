// The protocol engine driven by scripted server bytes: every exchange checked byte-wise.
#include <gtest/gtest.h>

#include <memory>

#include "openssl_cli.hpp"
#include "proto/auth.hpp"
#include "scripted.hpp"

using namespace ambisql;
using namespace ambisql::proto;
using namespace ambisql::test;

namespace {

config plain_config() {
    config c;
    c.user = "bob";
    c.password = "pw";
    c.ssl = ssl_mode::disabled;
    return c;
}

// The auth response inside a HandshakeResponse41 (lenenc after the user name).
std::string auth_field(const bytes_t& resp, std::string_view user) {
    reader r(resp);
    r.skip(32);
    EXPECT_EQ(r.null_string(), user);
    return std::string(r.lenenc_string());
}

std::string plugin_field(const bytes_t& resp) {
    reader r(resp);
    r.skip(32);
    r.null_string();
    r.lenenc_string();
    return std::string(r.null_string());
}

bytes_t text_row(std::initializer_list<std::string_view> fields) {
    bytes_t p;
    for (auto f : fields) {
        auto e = lenenc_str(f);
        p.insert(p.end(), e.begin(), e.end());
    }
    return p;
}

}  // namespace

TEST(Session, NativeLoginSendsTheScrambleAndConnects) {
    scripted t;
    config cfg = plain_config();
    ASSERT_TRUE(t.s.start_connect(cfg, "localhost", false));
    EXPECT_EQ(t.run(), next_action::read);
    EXPECT_EQ(t.feed(packet(0, greeting())), next_action::read);
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(auth_field(sent[0], "bob"), native_password_response("pw", "abcdefghijklmnopqrst"));
    EXPECT_EQ(plugin_field(sent[0]), "mysql_native_password");
    EXPECT_EQ(t.sent.size(), 0u);
    EXPECT_EQ(t.auth_ok(packet(2, ok_payload())), next_action::done);
    EXPECT_FALSE(t.s.failed());
    EXPECT_TRUE(t.s.connected());
    EXPECT_EQ(t.s.connection_id(), 42u);
}

TEST(Session, WrongPasswordIsAnAuthErrorWithTheServerCode) {
    scripted t;
    config cfg = plain_config();
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting()));
    EXPECT_EQ(t.feed(packet(2, err_payload(1045, "28000", "Access denied for user 'bob'"))), next_action::done);
    EXPECT_EQ(t.s.diag().kind, error_kind::auth);
    EXPECT_EQ(t.s.diag().server_code, 1045);
    EXPECT_EQ(t.s.diag().sqlstate, "28000");
    EXPECT_FALSE(t.s.connected());
}

TEST(Session, CachingSha2FastAuth) {
    scripted t;
    config cfg = plain_config();
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting("caching_sha2_password")));
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(auth_field(sent[0], "bob"), caching_sha2_response("pw", "abcdefghijklmnopqrst"));
    EXPECT_EQ(t.feed(packet(2, bytes_t{0x01, 0x03})), next_action::read) << "fast auth success: OK follows";
    EXPECT_EQ(t.auth_ok(packet(3, ok_payload())), next_action::done);
    EXPECT_TRUE(t.s.connected());
}

TEST(Session, CachingSha2FullAuthWithoutTlsOrKeyFailsUnlessFetchingTheKeyIsAllowed) {
    scripted t;
    config cfg = plain_config();
    cfg.ssl = ssl_mode::preferred;  // a downgrading attacker took TLS out of the greeting
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting("caching_sha2_password")));
    t.take_sent_packets();
    EXPECT_EQ(t.feed(packet(2, bytes_t{0x01, 0x04})), next_action::done);
    EXPECT_EQ(t.s.diag().kind, error_kind::auth);
    EXPECT_NE(t.s.diag().message.find("get_server_public_key"), std::string::npos) << t.s.diag().message;
    EXPECT_TRUE(t.sent.empty()) << "no request for an unverifiable key, no password in any form";
    EXPECT_FALSE(t.s.connected());
}

TEST(Session, CachingSha2FullAuthAsksForTheKeyAndSendsRsa) {
    std::string key = temp_path("key"), enc = temp_path("enc");
    run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + key + " 2>/dev/null");
    std::string pem = run("openssl pkey -in " + key + " -pubout");
    scripted t;
    config cfg = plain_config();
    cfg.get_server_public_key = true;  // the explicit opt-in
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting("caching_sha2_password")));
    t.take_sent_packets();
    t.feed(packet(2, bytes_t{0x01, 0x04}));
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], bytes_t{0x02}) << "no TLS, no key: ask the server for its key";
    bytes_t keypkt{0x01};
    keypkt.insert(keypkt.end(), pem.begin(), pem.end());
    t.feed(packet(4, keypkt));
    sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    ASSERT_EQ(sent[0].size(), 256u);
    write_file(enc, std::string(sent[0].begin(), sent[0].end()));
    std::string plain = run("openssl pkeyutl -decrypt -inkey " + key + " -pkeyopt rsa_padding_mode:oaep -in " + enc);
    EXPECT_EQ(plain, xor_bytes(std::string("pw") + '\0', "abcdefghijklmnopqrst"));
    EXPECT_EQ(t.auth_ok(packet(6, ok_payload())), next_action::done);
    EXPECT_TRUE(t.s.connected());
    std::remove(key.c_str());
    std::remove(enc.c_str());
}

TEST(Session, CachingSha2FullAuthOnUnixSocketSendsCleartext) {
    scripted t;
    config cfg = plain_config();
    t.s.start_connect(cfg, "localhost", true);
    t.run();
    t.feed(packet(0, greeting("caching_sha2_password")));
    t.take_sent_packets();
    t.feed(packet(2, bytes_t{0x01, 0x04}));
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], to_bytes(std::string("pw") + '\0'));
}

TEST(Session, AuthSwitchToEd25519) {
    scripted t;
    config cfg = plain_config();
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting()));
    t.take_sent_packets();
    std::string nonce(32, '\0');
    for (int i = 0; i < 32; ++i) nonce[i] = static_cast<char>(i * 9);
    bytes_t sw{0xFE};
    auto name = to_bytes("client_ed25519");
    sw.insert(sw.end(), name.begin(), name.end());
    sw.push_back(0);
    sw.insert(sw.end(), nonce.begin(), nonce.end());
    t.feed(packet(2, sw));
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::string(sent[0].begin(), sent[0].end()), ed25519_response("pw", nonce));
    EXPECT_EQ(t.auth_ok(packet(4, ok_payload())), next_action::done);
    EXPECT_TRUE(t.s.connected());
}

TEST(Session, SecondAuthSwitchIsRefused) {
    scripted t;
    config cfg = plain_config();
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting()));
    bytes_t sw = cat({bytes_t{0xFE}, to_bytes(std::string("mysql_native_password") + '\0'),
                      to_bytes("abcdefghijklmnopqrst"), bytes_t{0}});
    t.feed(packet(2, sw));
    EXPECT_EQ(t.feed(packet(4, sw)), next_action::done);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::auth_switch_refused));
    EXPECT_TRUE(t.s.broken());
}

TEST(Session, CleartextSwitchOutsideTlsIsRefusedWithoutSendingThePassword) {
    scripted t;
    config cfg = plain_config();
    cfg.password = "never-on-the-wire";
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting()));
    t.take_sent_packets();
    bytes_t sw = cat({bytes_t{0xFE}, to_bytes(std::string("mysql_clear_password") + '\0')});
    EXPECT_EQ(t.feed(packet(2, sw)), next_action::done);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::auth_insecure_cleartext));
    EXPECT_TRUE(t.sent.empty());
}

TEST(Session, TlsRequiredButNotOfferedFailsBeforeSendingCredentials) {
    scripted t;
    config cfg = plain_config();
    cfg.ssl = ssl_mode::required;
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    EXPECT_EQ(t.feed(packet(0, greeting("mysql_native_password", 0xF7FEF7FE))), next_action::done);
    EXPECT_EQ(t.s.diag().kind, error_kind::tls);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::tls_not_offered));
    EXPECT_TRUE(t.sent.empty()) << "nothing, certainly not the password, goes out in plaintext";
}

TEST(Session, TlsPreferredSendsSslRequestFirst) {
    scripted t;
    config cfg = plain_config();
    cfg.ssl = ssl_mode::preferred;
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting("mysql_native_password", 0xF7FEFFFE)));
    // The 32-byte SSL request, then the TLS ClientHello (a TLS record, type 22).
    ASSERT_GE(t.sent.size(), 36u + 5);
    EXPECT_EQ(t.sent[0], 32);
    EXPECT_EQ(t.sent[3], 1);
    EXPECT_EQ(t.sent[36], 22);
}

TEST(Session, PlaintextAfterTheGreetingEndsTheConnectionBeforeTls) {
    // A man in the middle appends a forged OK to the greeting: it must never be read as if
    // it had come over TLS (the STARTTLS injection class of bugs).
    for (ssl_mode m : {ssl_mode::preferred, ssl_mode::required, ssl_mode::verify_identity}) {
        scripted t;
        config cfg = plain_config();
        cfg.ssl = m;
        cfg.ssl_ca = "/nonexistent-ca.pem";  // never reached
        t.s.start_connect(cfg, "localhost", false);
        t.run();
        EXPECT_EQ(t.feed(cat({packet(0, greeting("mysql_native_password", 0xF7FEFFFE)), packet(2, ok_payload())})),
                  next_action::done);
        EXPECT_EQ(t.s.diag().kind, error_kind::protocol) << to_string(m);
        EXPECT_EQ(t.s.diag().code, make_error_code(errc::protocol_error));
        EXPECT_FALSE(t.s.connected());
        EXPECT_TRUE(t.s.broken());
        auto sent = t.take_sent_packets();
        ASSERT_EQ(sent.size(), 1u) << "the SSL request only: no TLS hello, no credentials";
        EXPECT_EQ(sent[0].size(), 32u);
    }
}

TEST(Session, ACutOffGreetingIsMalformed) {
    // auth data length 21 says 13 bytes of scramble part 2; the packet has 4, then a
    // plugin name cut short.
    bytes_t g = greeting();
    const std::size_t part2 = g.size() - 13 - std::string_view("mysql_native_password").size() - 1;
    g.resize(part2 + 4);
    for (char c : std::string_view("mysql_na")) g.push_back(static_cast<std::uint8_t>(c));
    scripted t;
    config cfg = plain_config();
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    EXPECT_EQ(t.feed(packet(0, g)), next_action::done);
    EXPECT_EQ(t.s.diag().kind, error_kind::protocol);
    EXPECT_TRUE(t.sent.empty()) << "no login on a malformed greeting";
    // A plugin name that only lacks its final NUL (old servers) is still accepted.
    bytes_t old = greeting();
    old.pop_back();
    scripted u;
    u.s.start_connect(cfg, "localhost", false);
    u.run();
    EXPECT_EQ(u.feed(packet(0, old)), next_action::read);
    EXPECT_FALSE(u.s.failed()) << u.s.diag().message;
    EXPECT_EQ(plugin_field(u.take_sent_packets().at(0)), "mysql_native_password");
}

TEST(Session, AShortScrambleIsAProtocolError) {
    // Without CLIENT_SECURE_CONNECTION a greeting carries only the 8 bytes of part 1.
    {
        scripted t;
        config cfg = plain_config();
        t.s.start_connect(cfg, "localhost", false);
        t.run();
        EXPECT_EQ(t.feed(packet(0, greeting("mysql_native_password", 0xF7FEF7FE & ~(1u << 15)))), next_action::done);
        EXPECT_EQ(t.s.diag().kind, error_kind::protocol);
        EXPECT_NE(t.s.diag().message.find("20 are required"), std::string::npos) << t.s.diag().message;
        EXPECT_TRUE(t.sent.empty());
    }
    // The same through an auth switch.
    scripted t;
    config cfg = plain_config();
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting()));
    t.take_sent_packets();
    EXPECT_EQ(t.feed(packet(2, cat({bytes_t{0xFE}, to_bytes("mysql_native_password"), bytes_t{0}, to_bytes("short"),
                                      bytes_t{0}}))),
              next_action::done);
    EXPECT_EQ(t.s.diag().kind, error_kind::protocol);
    EXPECT_TRUE(t.sent.empty());
}

TEST(Session, MaxPacketSizeHoldsForSingleChunkPackets) {
    scripted t;
    config cfg = plain_config();
    cfg.max_packet_size = 1000;
    t.connect(cfg);
    results out;
    ASSERT_TRUE(t.s.start_query("SELECT x", &out));
    t.run();
    t.take_sent_packets();
    bytes_t big = cat({packet(1, bytes_t{1}), packet(2, column_def("x", 253))});
    big = cat({big, packet(3, text_row({std::string(1500, 'a')}))});
    EXPECT_EQ(t.feed(big), next_action::done);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::packet_too_large));
    EXPECT_TRUE(t.s.broken());
    // Settings the 32-bit field offsets cannot address are refused up front.
    scripted u;
    cfg.max_packet_size = (1u << 30) + 1;
    EXPECT_FALSE(u.s.start_connect(cfg, "localhost", false));
    EXPECT_EQ(u.s.diag().code, make_error_code(errc::bad_config));
}

TEST(Session, ARowWhoseFirstFieldOverrunsItsPacketIsAMalformedRow) {
    scripted t;
    config cfg = plain_config();
    t.connect(cfg);
    results out;
    ASSERT_TRUE(t.s.start_query("SELECT x", &out));
    t.run();
    t.take_sent_packets();
    bytes_t resp = cat({packet(1, bytes_t{1}), packet(2, column_def("x", 253)),
                        packet(3, bytes_t{0xFE, 0xFE, 1, 2, 3, 4, 5, 6, 7})});
    EXPECT_EQ(t.feed(resp), next_action::done);
    EXPECT_EQ(t.s.diag().kind, error_kind::protocol);
    EXPECT_NE(t.s.diag().message.find("malformed row"), std::string::npos) << t.s.diag().message;
}

TEST(Session, LocalInfileIsDisarmedWhenItsStatementFailsBeforeTheRequest) {
    scripted t;
    config cfg = plain_config();
    int asked = 0;
    t.s.set_infile_source([&](std::string_view, session::infile_reader& next, std::string&) {
        ++asked;
        next = [](std::string& chunk, std::string&) { chunk.clear(); return true; };
        return true;
    });
    t.connect(cfg);
    results out;
    t.s.start_query("LOAD DATA LOCAL INFILE 'f.tsv' INTO TABLE missing", &out);
    t.run();
    t.take_sent_packets();
    EXPECT_EQ(t.feed(packet(1, err_payload(1146, "42S02", "Table 'missing' doesn't exist"))), next_action::done);
    // A later command (an execute here: no SQL of its own to re-arm or disarm) answered
    // with a request for that file: refused.
    statement st{7, 0, 1};
    ASSERT_TRUE(t.s.start_execute(st, {}, &out));
    t.run();
    t.take_sent_packets();
    t.feed(packet(1, cat({bytes_t{0xFB}, to_bytes("f.tsv")})));
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_TRUE(sent[0].empty()) << "an empty file";
    EXPECT_EQ(t.feed(packet(3, ok_payload())), next_action::done);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::local_infile_refused));
    EXPECT_EQ(asked, 0);
}

class Query : public ::testing::TestWithParam<bool> {};  // param: DEPRECATE_EOF

TEST_P(Query, ResultsetWithBothTerminatorStyles) {
    const bool dep = GetParam();
    scripted t;
    config cfg = plain_config();
    t.connect(cfg, dep ? 0xF7FEF7FE : (0xF7FEF7FE & ~(1u << 24)));
    results out;
    ASSERT_TRUE(t.s.start_query("SELECT id, name FROM t", &out));
    t.run();
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], cat({bytes_t{3}, to_bytes("SELECT id, name FROM t")}));
    std::uint8_t s = 1;
    bytes_t resp = cat({packet(s++, bytes_t{2}), packet(s++, column_def("id", 3)), packet(s++, column_def("name", 253))});
    if (!dep) resp = cat({resp, packet(s++, eof_payload())});
    resp = cat({resp, packet(s++, text_row({"1", "one"})), packet(s++, cat({lenenc_str("2"), bytes_t{0xFB}}))});
    resp = cat({resp, packet(s++, dep ? ok_payload(0, 0, 0x22, 0xFE) : eof_payload(0x22))});
    EXPECT_EQ(t.feed(resp, 7), next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].size(), 2u);
    EXPECT_EQ(out[0].columns()[1].name, "name");
    EXPECT_EQ(out[0][0][0].as<int>(), 1);
    EXPECT_EQ(out[0][0][1].as<std::string_view>(), "one");
    EXPECT_TRUE(out[0][1][1].is_null());
    EXPECT_EQ(t.s.status(), 0x22);
}

TEST_P(Query, MultipleResultsThenErrorKeepsConnectionUsable) {
    const bool dep = GetParam();
    scripted t;
    config cfg = plain_config();
    t.connect(cfg, dep ? 0xF7FEF7FE : (0xF7FEF7FE & ~(1u << 24)));
    results out;
    t.s.start_query("INSERT ...; SELECT 1; bad", &out);
    t.run();
    t.take_sent_packets();
    std::uint8_t s = 1;
    bytes_t resp = cat({packet(s++, ok_payload(3, 9, 0x0A)), packet(s++, bytes_t{1}), packet(s++, column_def("1", 8))});
    if (!dep) resp = cat({resp, packet(s++, eof_payload(0x0A))});
    resp = cat({resp, packet(s++, text_row({"1"})), packet(s++, dep ? ok_payload(0, 0, 0x0A, 0xFE) : eof_payload(0x0A)),
                packet(s++, err_payload(1064, "42000", "syntax error"))});
    EXPECT_EQ(t.feed(resp), next_action::done);
    EXPECT_EQ(t.s.diag().kind, error_kind::server);
    EXPECT_EQ(t.s.diag().server_code, 1064);
    EXPECT_TRUE(t.s.diag().connection_usable);
    EXPECT_TRUE(t.s.connected());
    ASSERT_EQ(out.size(), 2u) << "results before the failing statement are kept";
    EXPECT_EQ(out[0].affected_rows(), 3u);
    EXPECT_EQ(out[0].last_insert_id(), 9u);
    EXPECT_EQ(out[1][0][0].as<int>(), 1);
    // The next command starts from sequence 0 and works.
    ASSERT_TRUE(t.s.start_ping());
    t.run();
    EXPECT_EQ(t.take_sent_packets()[0], bytes_t{0x0E});
    EXPECT_EQ(t.feed(packet(1, ok_payload())), next_action::done);
    EXPECT_FALSE(t.s.failed());
}

INSTANTIATE_TEST_SUITE_P(EofStyles, Query, ::testing::Values(true, false));

TEST(Session, SequenceMismatchBreaksTheConnection) {
    scripted t;
    config cfg = plain_config();
    t.connect(cfg);
    t.s.start_ping();
    t.run();
    EXPECT_EQ(t.feed(packet(5, ok_payload())), next_action::done);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::sequence_mismatch));
    EXPECT_EQ(t.s.diag().kind, error_kind::protocol);
    EXPECT_TRUE(t.s.broken());
    EXPECT_FALSE(t.s.start_ping());
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::connection_broken));
}

TEST(Session, LocalInfileIsRefusedAndTheConnectionStaysUsable) {
    scripted t;
    config cfg = plain_config();
    t.connect(cfg);
    results out;
    t.s.start_query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t", &out);
    t.run();
    t.take_sent_packets();
    t.feed(packet(1, cat({bytes_t{0xFB}, to_bytes("/etc/passwd")})));
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_TRUE(sent[0].empty()) << "an empty packet: no file content";
    EXPECT_EQ(t.feed(packet(3, err_payload(1148, "42000", "not allowed"))), next_action::done);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::local_infile_refused));
    EXPECT_TRUE(t.s.connected());
}

TEST(Session, EnabledLocalInfileIsHonouredOnlyForTheFileTheStatementNamed) {
    scripted t;
    config cfg = plain_config();
    std::vector<std::string> asked;
    t.s.set_infile_source([&](std::string_view f, session::infile_reader& next, std::string&) {
        asked.emplace_back(f);
        next = [n = 0](std::string& chunk, std::string&) mutable {  // two pieces, then the end
            if (n < 2) chunk = std::to_string(++n) + "\ta\n";
            return true;
        };
        return true;
    });
    t.connect(cfg);
    results out;
    // A request on a statement that is not LOAD DATA LOCAL: refused, source not asked.
    t.s.start_query("SELECT 1", &out);
    t.run();
    t.take_sent_packets();
    t.feed(packet(1, cat({bytes_t{0xFB}, to_bytes("/etc/passwd")})));
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_TRUE(sent[0].empty());
    EXPECT_EQ(t.feed(packet(3, ok_payload())), next_action::done);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::local_infile_refused));
    // The statement names one file, the server asks for another: refused.
    t.s.start_query("load data  LOCAL infile 'it''s.tsv' INTO TABLE t", &out);
    t.run();
    t.take_sent_packets();
    t.feed(packet(1, cat({bytes_t{0xFB}, to_bytes("/etc/shadow")})));
    EXPECT_TRUE(t.take_sent_packets().at(0).empty());
    t.feed(packet(3, ok_payload()));
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::local_infile_refused));
    EXPECT_TRUE(asked.empty());
    // The named file (quotes unescaped): its contents, then the empty packet.
    t.s.start_query("LOAD DATA LOCAL INFILE 'it''s.tsv' INTO TABLE t", &out);
    t.run();
    t.take_sent_packets();
    t.feed(packet(1, cat({bytes_t{0xFB}, to_bytes("it's.tsv")})));
    sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 3u);
    EXPECT_EQ(sent[0], to_bytes("1\ta\n"));
    EXPECT_EQ(sent[1], to_bytes("2\ta\n"));
    EXPECT_TRUE(sent[2].empty());
    EXPECT_EQ(t.feed(packet(5, ok_payload(2))), next_action::done);
    EXPECT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(out.affected_rows(), 2u);
    EXPECT_EQ(asked, (std::vector<std::string>{"it's.tsv"}));
}

TEST(Session, ALocalInfileReadErrorClosesTheConnectionInsteadOfEndingTheData) {
    scripted t;
    config cfg = plain_config();
    t.s.set_infile_source([&](std::string_view, session::infile_reader& next, std::string&) {
        next = [n = 0](std::string& chunk, std::string& why) mutable {
            if (n++ == 0) {
                chunk = "1\ta\n";
                return true;
            }
            why = "disk on fire";
            return false;
        };
        return true;
    });
    t.connect(cfg);
    results out;
    t.s.start_query("LOAD DATA LOCAL INFILE 'f.tsv' INTO TABLE t", &out);
    t.run();
    t.take_sent_packets();
    EXPECT_EQ(t.feed(packet(1, cat({bytes_t{0xFB}, to_bytes("f.tsv")}))), next_action::done);
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u) << "the first piece, and no empty packet: the server must not keep a partial load";
    EXPECT_EQ(sent[0], to_bytes("1\ta\n"));
    EXPECT_TRUE(t.s.failed());
    EXPECT_TRUE(t.s.broken());
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::io_error));
    EXPECT_NE(t.s.diag().message.find("after 4 bytes (disk on fire)"), std::string::npos) << t.s.diag().message;
}

TEST(Session, StreamingHandsOutBatchesAndBlocksOtherCommands) {
    scripted t;
    config cfg = plain_config();
    t.connect(cfg);
    ASSERT_TRUE(t.s.start_query("SELECT v FROM t", nullptr));
    t.run();
    EXPECT_EQ(t.feed(cat({packet(1, bytes_t{1}), packet(2, column_def("v", 3))})), next_action::done);
    EXPECT_EQ(t.s.stream(), session::stream_state::rows);
    EXPECT_FALSE(t.s.start_ping());
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::result_pending));
    ASSERT_TRUE(t.s.start_read_rows());
    EXPECT_EQ(t.feed(cat({packet(3, text_row({"10"})), packet(4, text_row({"11"}))})), next_action::done);
    ASSERT_EQ(t.s.batch_size(), 2u);
    EXPECT_EQ(t.s.batch_row(1)[0].as<int>(), 11);
    ASSERT_TRUE(t.s.start_read_rows());
    EXPECT_EQ(t.feed(packet(5, ok_payload(0, 0, 2, 0xFE))), next_action::done);
    EXPECT_EQ(t.s.batch_size(), 0u);
    EXPECT_EQ(t.s.stream(), session::stream_state::set_done);
    EXPECT_TRUE(t.s.start_ping());
}

TEST(Session, MalformedPacketsAreProtocolErrors) {
    const bytes_t bad[] = {
        bytes_t{},                      // empty response
        bytes_t{0xFC, 0x01},            // truncated column count
        bytes_t{0x00, 0xFE},            // truncated OK
        bytes_t{0xFF, 0x01},            // truncated ERR
    };
    for (const auto& b : bad) {
        scripted t;
        config cfg = plain_config();
        t.connect(cfg);
        results out;
        t.s.start_query("SELECT 1", &out);
        t.run();
        EXPECT_EQ(t.feed(packet(1, b)), next_action::done);
        EXPECT_EQ(t.s.diag().kind, error_kind::protocol);
        EXPECT_TRUE(t.s.broken());
    }
}

TEST(Session, PeerCloseIsANetworkError) {
    scripted t;
    config cfg = plain_config();
    t.connect(cfg);
    t.s.start_ping();
    t.run();
    t.s.on_read(0);
    EXPECT_EQ(t.s.resume(), next_action::done);
    EXPECT_EQ(t.s.diag().kind, error_kind::network);
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::connection_closed));
}

TEST(Session, WithoutSessionTrackingAnyStatementMakesTheCharsetUnknown) {
    scripted t;
    config cfg = plain_config();
    t.connect(cfg, 0xF7FEF7FE & ~(1u << 23));  // no SESSION_TRACK: no tracking statement either
    EXPECT_FALSE(t.s.charset_tracked());
    EXPECT_EQ(t.s.charset(), "utf8mb4");  // the handshake's
    results out;
    const sql_arg args[] = {sql_arg("x")};
    ASSERT_TRUE(t.s.start_query("SELECT ?", args, &out));  // known until a statement runs
    t.run();
    t.feed(packet(1, ok_payload()));
    // Even one that names no character set: a stored routine or a prepared SET may change it.
    ASSERT_TRUE(t.s.start_query("CALL p()", &out));
    t.run();
    t.feed(packet(1, ok_payload()));
    EXPECT_TRUE(t.s.escaping_rules().charset_unknown);
    EXPECT_EQ(t.s.charset(), "");
    EXPECT_FALSE(t.s.start_query("SELECT ?", args, &out));
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::charset_unknown));
    // Set through the driver: known again.
    t.take_sent_packets();
    ASSERT_TRUE(t.s.start_set_charset("gbk", ""));
    t.run();
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::string(sent[0].begin() + 1, sent[0].end()), "SET NAMES gbk");
    ASSERT_EQ(t.feed(packet(1, ok_payload())), next_action::done);
    EXPECT_EQ(t.s.charset(), "gbk");
    EXPECT_FALSE(t.s.escaping_rules().charset_unknown);
    EXPECT_EQ(t.s.escaping_rules().mb, multibyte::gbk);
    // A failed SET NAMES teaches nothing.
    ASSERT_TRUE(t.s.start_query("CALL p()", &out));
    t.run();
    t.feed(packet(1, ok_payload()));
    ASSERT_TRUE(t.s.start_set_charset("big5", ""));
    t.run();
    t.feed(packet(1, err_payload(1115, "42000", "Unknown character set")));
    EXPECT_TRUE(t.s.escaping_rules().charset_unknown);
    ASSERT_TRUE(t.s.start_query("SELECT 1", &out));
    t.run();
    t.feed(packet(1, ok_payload()));
    EXPECT_EQ(t.s.charset(), "");
    EXPECT_FALSE(t.s.start_set_charset("gbk; DROP TABLE t", ""));
    EXPECT_EQ(t.s.diag().code, make_error_code(errc::bad_config));
    EXPECT_FALSE(t.s.start_set_charset("nosuchset", ""));
}

TEST(Session, ConnectAndResetMakeTheServerTrackTheCharacterSet) {
    scripted t;
    config cfg = plain_config();
    t.s.start_connect(cfg, "localhost", false);
    t.run();
    t.feed(packet(0, greeting()));
    t.take_sent_packets();
    ASSERT_EQ(t.feed(packet(2, ok_payload())), next_action::read);  // the tracking statement's answer next
    auto sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    const std::string track(sent[0].begin() + 1, sent[0].end());
    EXPECT_EQ(sent[0][0], 0x03);
    EXPECT_NE(track.find("session_track_system_variables"), std::string::npos) << track;
    EXPECT_NE(track.find("'character_set_client'"), std::string::npos) << track;
    ASSERT_EQ(t.feed(packet(1, tracked_ok_payload())), next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_TRUE(t.s.charset_tracked());

    // A reset sends the statement again (the server restored the global list), behind it.
    ASSERT_TRUE(t.s.start_reset_connection());
    t.run();
    sent = t.take_sent_packets();
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[0][0], 0x1F);
    EXPECT_EQ(std::string(sent[1].begin() + 1, sent[1].end()), track);
    ASSERT_EQ(t.feed(packet(1, ok_payload())), next_action::read);
    EXPECT_FALSE(t.s.charset_tracked());  // not until its answer says so
    ASSERT_EQ(t.feed(packet(1, tracked_ok_payload())), next_action::done);
    EXPECT_TRUE(t.s.charset_tracked());

    // An OK that does not report the new list: the server's tracker is off for this
    // session (MariaDB's, in a session that began with an empty list).
    ASSERT_TRUE(t.s.start_reset_connection());
    t.run();
    t.feed(packet(1, ok_payload()));
    ASSERT_EQ(t.feed(packet(1, ok_payload())), next_action::done);
    EXPECT_FALSE(t.s.failed());
    EXPECT_FALSE(t.s.charset_tracked());
    // A list reported without character_set_client (or with "*": tracked).
    ASSERT_TRUE(t.s.start_reset_connection());
    t.run();
    t.feed(packet(1, ok_payload()));
    t.feed(packet(1, tracked_ok_payload("autocommit,session_track_system_variables")));
    EXPECT_FALSE(t.s.charset_tracked());
    ASSERT_TRUE(t.s.start_reset_connection());
    t.run();
    t.feed(packet(1, ok_payload()));
    t.feed(packet(1, tracked_ok_payload("*")));
    EXPECT_TRUE(t.s.charset_tracked());

    // A server that refuses it: connected all the same, the charset untracked.
    ASSERT_TRUE(t.s.start_reset_connection());
    t.run();
    t.feed(packet(1, ok_payload()));
    ASSERT_EQ(t.feed(packet(1, err_payload(1193, "HY000", "Unknown system variable"))), next_action::done);
    EXPECT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_FALSE(t.s.charset_tracked());
    EXPECT_FALSE(t.s.escaping_rules().charset_unknown);  // the reset's charset, until a statement runs
}

// A reset restores the handshake's character set: the session's own copy of it, not the
// connect's config, which the caller may have changed or let go since (a reset read it
// there: after an nb_connection's set_config() it took the new config's character set
// for the server's, so text was escaped for another character set than the server's).
TEST(Session, AResetRestoresTheHandshakesCharsetWhateverBecameOfTheConfig) {
    scripted t;
    auto cfg = std::make_unique<config>(plain_config());
    cfg->charset = "gbk";
    t.connect(*cfg);
    ASSERT_EQ(t.s.charset(), "gbk");
    cfg->charset = "utf8mb4";  // the caller's config, changed for its next connect
    ASSERT_TRUE(t.s.start_reset_connection());
    t.run();
    t.feed(packet(1, ok_payload()));
    ASSERT_EQ(t.feed(packet(1, tracked_ok_payload())), next_action::done);
    EXPECT_EQ(t.s.charset(), "gbk");
    EXPECT_EQ(t.s.escaping_rules().mb, multibyte::gbk);
    cfg.reset();  // and gone (ASan: a read of it is a use after free)
    ASSERT_TRUE(t.s.start_reset_connection());
    t.run();
    t.feed(packet(1, ok_payload()));
    ASSERT_EQ(t.feed(packet(1, tracked_ok_payload())), next_action::done);
    EXPECT_EQ(t.s.charset(), "gbk");
}

TEST(Session, AStatementThatChangesWhatTheServerTracksMakesTheCharsetUnknown) {
    // The server does not report a change that drops character_set_client from the list.
    for (std::string_view sql : {"SET SESSION session_track_system_variables=''",
                                 "set @@Session_Track_System_Variables = 'autocommit'",
                                 "SET @@session.SESSION_TRACK_SYSTEM_VARIABLES='*'"}) {
        scripted t;
        t.connect(plain_config());
        ASSERT_TRUE(t.s.charset_tracked());
        results out;
        ASSERT_TRUE(t.s.start_query(sql, &out));
        t.run();
        t.feed(packet(1, ok_payload()));
        EXPECT_FALSE(t.s.charset_tracked()) << sql;
        EXPECT_TRUE(t.s.escaping_rules().charset_unknown) << sql;
    }
    scripted t;
    t.connect(plain_config());
    results out;
    // Other trackers' switches (the pool sets session_track_state_change) change nothing.
    for (std::string_view sql : {"SELECT session_id, tracking FROM sessions_tracked",
                                 "SET SESSION session_track_state_change = ON", "SET session_track_schema=0"}) {
        ASSERT_TRUE(t.s.start_query(sql, &out));
        t.run();
        t.feed(packet(1, ok_payload()));
        EXPECT_TRUE(t.s.charset_tracked()) << sql;
        EXPECT_FALSE(t.s.escaping_rules().charset_unknown) << sql;
    }
}

TEST(Session, TrackedCharsetAndSchemaChangesAreApplied) {
    scripted t;
    config cfg = plain_config();
    t.connect(cfg);
    EXPECT_EQ(t.s.charset(), "utf8mb4");
    results out;
    ASSERT_TRUE(t.s.start_query("SET NAMES sjis", &out));
    t.run();
    // OK with SESSION_STATE_CHANGED: info "", then the state block.
    bytes_t var = cat({lenenc_str("character_set_client"), lenenc_str("sjis")});
    bytes_t schema = lenenc_str("shop");
    bytes_t block = cat({{0}, lenenc_str(std::string(var.begin(), var.end())), {1},
                         lenenc_str(std::string(schema.begin(), schema.end()))});
    bytes_t ok = cat({{0x00, 0, 0, 0x02, 0x40, 0, 0}, {0}, lenenc_str(std::string(block.begin(), block.end()))});
    ASSERT_EQ(t.feed(packet(1, ok)), next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(t.s.charset(), "sjis");
    EXPECT_EQ(t.s.schema(), "shop");
    EXPECT_EQ(t.s.escaping_rules().mb, multibyte::sjis);
    EXPECT_FALSE(t.s.escaping_rules().charset_unknown);
}

// bulk_rows(): the state in which a driver may let rows pile up before it reads (see
// config::read_coalescing). Only inside the rows of a result, after 256 KiB of it, and
// not while a large packet is half read.
TEST(Session, BulkRowsOnlyWhileALargeResultStreamsInSmallRows) {
    scripted t;
    t.connect(plain_config());
    results out;
    ASSERT_TRUE(t.s.start_query("SELECT v FROM big", &out));
    t.run();
    EXPECT_FALSE(t.s.bulk_rows());
    std::uint8_t seq = 1;
    t.feed(cat({packet(seq++, bytes_t{1}), packet(seq++, column_def("v", 253))}));
    const std::string value(1000, 'r');
    std::size_t fed = 0, rows = 0;
    while (fed < 250 * 1024) {  // below the 256 KiB a result needs first
        auto row = packet(seq++, text_row({value}));
        fed += row.size();
        ++rows;
        EXPECT_EQ(t.feed(row), next_action::read);
        EXPECT_FALSE(t.s.bulk_rows()) << fed;
    }
    for (int i = 0; i < 20; ++i) t.feed(packet(seq++, text_row({value})));
    EXPECT_TRUE(t.s.bulk_rows()) << "past 256 KiB, between small rows";
    // The start of a 60 KiB row: the rest is known to be on its way.
    auto big = packet(seq++, text_row({std::string(60 * 1024, 'b')}));
    t.feed(bytes_t(big.begin(), big.begin() + 1000));
    EXPECT_FALSE(t.s.bulk_rows()) << "59 KiB of a packet still missing";
    t.feed(bytes_t(big.begin() + 1000, big.end() - 100));
    EXPECT_TRUE(t.s.bulk_rows()) << "only its last 100 bytes missing";
    t.feed(bytes_t(big.end() - 100, big.end()));
    EXPECT_EQ(t.feed(packet(seq++, ok_payload(0, 0, 2, 0xFE))), next_action::done);
    ASSERT_FALSE(t.s.failed()) << t.s.diag().message;
    EXPECT_EQ(out[0].size(), rows + 21);
    EXPECT_EQ(out[0][rows + 20][0].as<std::string_view>().size(), 60u * 1024);
    EXPECT_FALSE(t.s.bulk_rows()) << "the result is complete";
    // The next command's result counts from its own start.
    ASSERT_TRUE(t.s.start_query("SELECT v FROM big", &out));
    t.run();
    t.feed(cat({packet(1, bytes_t{1}), packet(2, column_def("v", 253)), packet(3, text_row({value}))}));
    EXPECT_FALSE(t.s.bulk_rows());
}
