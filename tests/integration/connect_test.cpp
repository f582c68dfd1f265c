// Logging in: accounts, transports, TLS modes, failures.
#include <unistd.h>
#include <iterator>
#include <fstream>
#include <cstdlib>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

namespace {
std::string current_user(connection& c) {
    return std::string(c.query("SELECT CURRENT_USER()").row(0)[0].as<std::string_view>());
}
std::string cipher(connection& c) {
    auto r = c.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    return std::string(r.row(0)[1].as<std::string_view>());
}
}  // namespace

TEST(Connect, NativePasswordOverTcp) {
    connection c(tcp_config());
    EXPECT_TRUE(c.is_open());
    EXPECT_EQ(current_user(c), "ambisql@%");
    EXPECT_FALSE(c.tls_active());
    EXPECT_EQ(cipher(c), "") << "TLS disabled means plaintext";
    EXPECT_NE(c.server_version().find("MariaDB"), std::string::npos);
    EXPECT_GT(c.connection_id(), 0u);
    EXPECT_EQ(c.query("SELECT CONNECTION_ID()").row(0)[0].as<std::uint32_t>(), c.connection_id());
}

TEST(Connect, UnixSocket) {
    connection c(unix_config());
    EXPECT_EQ(current_user(c), "ambisql@localhost");
    auto r = c.query("SELECT @@socket");
    EXPECT_EQ(r.row(0)[0].as<std::string_view>(), env().socket);
}

// A unix socket whose listen queue is full refuses a connect without blocking (EAGAIN),
// with nothing in progress: the connect is made again until there is room, as a blocking
// connect would wait (it failed at once before, "read failed: Invalid argument").
TEST(Connect, AUnixSocketWithAFullListenQueueIsTriedAgainUntilThereIsRoom) {
    relay queue(relay::mode::queue_full);
    const auto t0 = std::chrono::steady_clock::now();
    connection c(queue.through());
    EXPECT_GE(std::chrono::steady_clock::now() - t0, relay::queue_full_for - std::chrono::milliseconds(20));
    EXPECT_EQ(c.query("SELECT 7").row(0)[0].as<int>(), 7);
}

TEST(Connect, AUnixSocketWhoseListenQueueStaysFullTimesOutSayingSo) {
    relay queue(relay::mode::queue_full);
    config cfg = queue.through();
    cfg.connect_timeout = std::chrono::milliseconds(100);
    const auto t0 = std::chrono::steady_clock::now();
    try {
        connection c(cfg);
        FAIL() << "connected through a full listen queue";
    } catch (const error& e) {
        const auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_GE(took, std::chrono::milliseconds(95));
        EXPECT_LT(took, relay::queue_full_for);
        EXPECT_EQ(e.diag().code, errc::timeout) << e.what();
        EXPECT_NE(std::string(e.what()).find("listen queue stayed full"), std::string::npos) << e.what();
    }
}

TEST(Connect, Ed25519Account) {
    connection c(account("ambisql_ed"));
    EXPECT_EQ(current_user(c), "ambisql_ed@%");
}

TEST(Connect, Ed25519AccountOverTls) {
    config cfg = account("ambisql_ed");
    cfg.ssl = ssl_mode::required;
    connection c(cfg);
    EXPECT_TRUE(c.tls_active());
    EXPECT_EQ(current_user(c), "ambisql_ed@%");
}

TEST(Connect, EmptyPasswordAccount) {
    config cfg = tcp_config();
    cfg.user = "ambisql_nopw";
    cfg.password = "";
    connection c(cfg);
    EXPECT_EQ(current_user(c), "ambisql_nopw@%");
}

TEST(Connect, WrongPasswordSurfacesServerError1045) {
    for (const char* user : {"ambisql", "ambisql_ed"}) {
        config cfg = account(user);
        cfg.password = "wrong";
        connection c;
        try {
            c.connect(cfg);
            FAIL() << "login with a wrong password succeeded for " << user;
        } catch (const error& e) {
            EXPECT_EQ(e.kind(), error_kind::auth) << user;
            EXPECT_EQ(e.server_code(), 1045) << user;
            EXPECT_EQ(e.sqlstate(), "28000") << user;
            EXPECT_FALSE(e.connection_usable());
        }
        EXPECT_FALSE(c.is_open());
        std::error_code ec;
        c.connect(cfg, ec);
        EXPECT_EQ(ec, std::error_code(1045, server_category()));
    }
}

TEST(Connect, UnknownDatabaseIsAServerError) {
    config cfg = tcp_config();
    cfg.database = "no_such_db";
    try {
        connection c(cfg);
        FAIL() << "connected to a missing database";
    } catch (const error& e) {
        EXPECT_EQ(e.server_code(), 1049);
    }
}

TEST(Connect, TlsRequiredAccountNeedsTls) {
    config cfg = account("ambisql_ssl");
    cfg.ssl = ssl_mode::disabled;
    EXPECT_THROW(connection{cfg}, error) << "REQUIRE SSL account must refuse plaintext";
    cfg.ssl = ssl_mode::required;
    connection c(cfg);
    EXPECT_TRUE(c.tls_active());
    EXPECT_NE(cipher(c), "");
    EXPECT_EQ(current_user(c), "ambisql_ssl@%");
}

TEST(Connect, PreferredUsesTlsOverTcpButNotOverUnixSocket) {
    config tcp = tcp_config();
    tcp.ssl = ssl_mode::preferred;
    connection a(tcp);
    EXPECT_TRUE(a.tls_active());
    EXPECT_NE(cipher(a), "");
    config local = unix_config();
    local.ssl = ssl_mode::preferred;
    connection b(local);
    EXPECT_FALSE(b.tls_active());
}

TEST(Connect, VerifyCaAcceptsTheRightCaAndRejectsAnother) {
    config cfg = tcp_config();
    cfg.ssl = ssl_mode::verify_ca;
    cfg.ssl_ca = env().ca;
    connection ok(cfg);
    EXPECT_TRUE(ok.tls_active());

    cfg.ssl_ca = env().other_ca;
    try {
        connection bad(cfg);
        FAIL() << "verify-ca accepted a certificate from an unknown CA";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::tls);
        EXPECT_NE(std::string(e.what()).find("certificate"), std::string::npos) << e.what();
    }
}

// The trust anchors come from a CA directory (hashed names) or PEM text as well as a file:
// each verifies with the right CA and fails with another, never falling back to no check.
TEST(Connect, VerifyWithACaDirectoryOrPemTextAndAMinimumTlsVersion) {
    auto read = [](const std::string& path) {
        std::ifstream f(path);
        return std::string(std::istreambuf_iterator<char>(f), {});
    };
    const std::string dir = ::testing::TempDir() + "ambisql_capath_" + std::to_string(::getpid());
    ASSERT_EQ(std::system(("rm -rf " + dir + " && mkdir -p " + dir + " && cp " + env().ca + " " + dir +
                           "/ca.pem && openssl rehash " + dir + " >/dev/null 2>&1")
                              .c_str()),
              0);
    const std::string other = ::testing::TempDir() + "ambisql_capath_other_" + std::to_string(::getpid());
    ASSERT_EQ(std::system(("rm -rf " + other + " && mkdir -p " + other + " && cp " + env().other_ca + " " + other +
                           "/ca.pem && openssl rehash " + other + " >/dev/null 2>&1")
                              .c_str()),
              0);
    config cfg = tcp_config();
    cfg.ssl = ssl_mode::verify_identity;
    cfg.ssl_ca.clear();
    cfg.ssl_capath = dir;
    EXPECT_TRUE(connection(cfg).tls_active());
    cfg.ssl_capath = other;
    EXPECT_THROW(connection{cfg}, error);
    cfg.ssl_capath.clear();
    cfg.ssl_ca_pem = read(env().ca);
    EXPECT_TRUE(connection(cfg).tls_active());
    cfg.ssl_ca_pem = read(env().other_ca);
    EXPECT_THROW(connection{cfg}, error);
    cfg.ssl_ca_pem = "not a certificate";
    try {
        connection bad(cfg);
        FAIL() << "PEM text without a certificate was accepted";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::tls);
        EXPECT_NE(std::string(e.what()).find("no CA certificate"), std::string::npos) << e.what();
    }
    // TLS 1.3 at least: what the server (MariaDB 10.11 with OpenSSL 3) negotiates anyway.
    cfg = config::from_url(env().url + "?ssl-mode=verify-ca&tls-min-version=1.3&ssl-ca=" + env().ca);
    EXPECT_EQ(cfg.tls_min_version, 0x0304);
    connection c13(cfg);
    EXPECT_EQ(c13.tls_version(), "TLSv1.3");
    EXPECT_THROW(config::from_url(env().url + "?tls-min-version=1.1"), error);
    std::system(("rm -rf " + dir + " " + other).c_str());
}

TEST(Connect, VerifyWithoutSslCaUsesTheSystemTrustStore) {
    config cfg = tcp_config();
    cfg.ssl = ssl_mode::verify_identity;
    cfg.ssl_ca.clear();
    // The system's store does not hold the test CA: verification (not the setting) fails.
    ::unsetenv("SSL_CERT_FILE");
    try {
        connection bad(cfg);
        FAIL() << "a certificate from a private CA passed against the system's trust store";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::tls);
        EXPECT_NE(std::string(e.what()).find("certificate verification"), std::string::npos) << e.what();
    }
    // OpenSSL's default paths follow SSL_CERT_FILE: with the test CA there, it verifies.
    ::setenv("SSL_CERT_FILE", env().ca.c_str(), 1);
    connection ok(cfg);
    ::unsetenv("SSL_CERT_FILE");
    EXPECT_TRUE(ok.tls_active());
    EXPECT_EQ(ok.query("SELECT 1").row(0)[0].as<int>(), 1);
}

TEST(Connect, VerifyIdentityChecksTheHostName) {
    config cfg = tcp_config();
    cfg.ssl = ssl_mode::verify_identity;
    cfg.ssl_ca = env().ca;
    // By IP literal (SAN IP:127.0.0.1) and by name (SAN DNS:localhost).
    connection by_ip(cfg);
    EXPECT_TRUE(by_ip.tls_active());
    cfg.host_address = "127.0.0.1";
    cfg.host = "localhost";
    connection by_name(cfg);
    EXPECT_TRUE(by_name.tls_active());
    // The same server under a name its certificate does not carry.
    cfg.host = "db.wrong.example";
    try {
        connection bad(cfg);
        FAIL() << "verify-identity accepted a certificate for another host";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::tls);
        EXPECT_NE(std::string(e.what()).find("mismatch"), std::string::npos) << e.what();
    }
    // verify-ca does not check names: the same connection succeeds.
    cfg.ssl = ssl_mode::verify_ca;
    connection ca_only(cfg);
    EXPECT_TRUE(ca_only.tls_active());
}

TEST(Connect, UrlWithSocketAndTls) {
    auto cfg = config::from_url(env().url + "?ssl-mode=verify-identity&ssl-ca=" + env().ca);
    connection c(cfg);
    EXPECT_TRUE(c.tls_active());
    auto local = config::from_url(env().url + "?socket=" + env().socket);
    connection u(local);
    EXPECT_EQ(current_user(u), "ambisql@localhost");
}

TEST(Connect, RefusedPortIsANetworkError) {
    config cfg = tcp_config();
    cfg.port = 1;  // nothing listens there
    try {
        connection c(cfg);
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::network);
        EXPECT_EQ(e.code(), make_error_code(errc::connect_failed));
    }
}

TEST(Connect, UnknownHostIsANetworkError) {
    config cfg = tcp_config();
    cfg.host = "no-such-host.invalid";
    try {
        connection c(cfg);
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::network);
        EXPECT_EQ(e.code(), make_error_code(errc::host_not_found));
    }
}

TEST(Connect, ABindAddressIsTheSourceTheServerSees) {
    // The connection (and a poll-driven one) comes from 127.0.0.2, not the system's
    // choice for loopback (127.0.0.1); an address that is not one is a clear error.
    config cfg = tcp_config();
    cfg.bind_address = "127.0.0.2";
    connection c(cfg);
    auto r = c.query("SELECT host FROM information_schema.processlist WHERE id = CONNECTION_ID()");
    EXPECT_EQ(r.row(0)[0].as<std::string>().rfind("127.0.0.2:", 0), 0u) << r.row(0)[0].as<std::string>();
    config url = config::from_url(env().url + (env().url.find('?') == std::string::npos ? "?" : "&") +
                                  "bind-address=127.0.0.3&ssl-mode=disabled");
    EXPECT_EQ(url.bind_address, "127.0.0.3");
    cfg.bind_address = "not-an-address";
    try {
        connection bad(cfg);
        FAIL() << "connected from a bind address that is not one";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::bad_config)) << e.what();
        EXPECT_EQ(e.kind(), error_kind::client);
    }
}

TEST(Connect, CommandsBeforeConnectFailCleanly) {
    connection c;
    try {
        c.query("SELECT 1");
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::not_connected));
    }
}

TEST(Connect, ReconnectAfterClose) {
    connection c(tcp_config());
    auto id1 = c.connection_id();
    c.close();
    EXPECT_FALSE(c.is_open());
    c.connect(tcp_config());
    EXPECT_NE(c.connection_id(), id1);
    EXPECT_EQ(c.query("SELECT 2").row(0)[0].as<int>(), 2);
}

TEST(Connect, ConnectionAttributesReachTheServer) {
    config cfg = tcp_config();
    cfg.connect_attributes.emplace_back("app", "ambisql-tests");
    connection c(cfg);
    auto r = c.query(
        "SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs WHERE PROCESSLIST_ID = CONNECTION_ID() "
        "AND ATTR_NAME = 'app'");
    ASSERT_EQ(r.row_count(), 1u) << "the test server runs with performance_schema on";
    EXPECT_EQ(r.row(0)[0].as<std::string_view>(), "ambisql-tests");
}
