#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <stdexcept>

#include "ambisql/config.hpp"
#include "ambisql/pool.hpp"
#include "ambisql/error.hpp"

using namespace ambisql;

TEST(Config, FullUrl) {
    auto c = config::from_url(
        "mysql://app:p%40ss%3Aword@db.example.com:3307/shop?ssl-mode=verify-identity&ssl-ca=/etc/ca.pem&"
        "connect-timeout=2.5&read-timeout=30&multi-statements=0&charset=latin1&compress=1&compression-level=6&"
        "pipeline-spin-us=0");
    EXPECT_EQ(c.user, "app");
    EXPECT_EQ(c.password, "p@ss:word");
    EXPECT_EQ(c.host, "db.example.com");
    EXPECT_EQ(c.port, 3307);
    EXPECT_EQ(c.database, "shop");
    EXPECT_EQ(c.ssl, ssl_mode::verify_identity);
    EXPECT_EQ(c.ssl_ca, "/etc/ca.pem");
    EXPECT_EQ(c.connect_timeout.count(), 2500);
    EXPECT_EQ(c.read_timeout.count(), 30000);
    EXPECT_FALSE(c.multi_statements);
    EXPECT_EQ(c.charset, "latin1");
    EXPECT_TRUE(c.compress);
    EXPECT_EQ(c.compression_level, 6);
    EXPECT_EQ(c.pipeline_spin.count(), 0);
    EXPECT_FALSE(config::from_url("mysql://u@h/").compress) << "compression is opt-in";
    EXPECT_EQ(config::from_url("mysql://u@h/?pipeline-spin-us=200").pipeline_spin.count(), 200);
    EXPECT_FALSE(config::from_url("mysql://u@h/").get_server_public_key) << "fetching the RSA key is opt-in";
    EXPECT_TRUE(config::from_url("mysql://u@h/?found-rows=1").found_rows);
    EXPECT_TRUE(config::from_url("mysql://u@h/?get-server-public-key=1").get_server_public_key);
    EXPECT_EQ(config::from_url("mysql://u@h/?max-packet-size=65536").max_packet_size, 65536u);
    EXPECT_THROW(config::from_url("mysql://u@h/?max-packet-size=big"), error);
    EXPECT_EQ(config::from_url("mysql://u@h/").cancel_timeout.count(), 5000);
    EXPECT_EQ(config::from_url("mysql://u@h/?cancel-timeout=0.25").cancel_timeout.count(), 250);
}

TEST(Config, Ipv6AndDefaults) {
    auto c = config::from_url("mysql://root@[::1]:3306");
    EXPECT_EQ(c.host, "::1");
    EXPECT_EQ(c.user, "root");
    EXPECT_EQ(c.password, "");
    EXPECT_EQ(c.database, "");
    EXPECT_EQ(c.ssl, ssl_mode::preferred);
    auto d = config::from_url("mariadb://u:p@[fe80::1]/x");
    EXPECT_EQ(d.host, "fe80::1");
    EXPECT_EQ(d.port, 3306);
}

TEST(Config, UnixSocketInHostOrParameter) {
    auto a = config::from_url("mysql://u:p@%2Fvar%2Frun%2Fmysqld.sock/db");
    EXPECT_EQ(a.unix_socket, "/var/run/mysqld.sock");
    auto b = config::from_url("mysql://u:p@localhost/db?socket=/tmp/m.sock");
    EXPECT_EQ(b.unix_socket, "/tmp/m.sock");
}

TEST(Config, BadUrlsThrow) {
    for (auto u : {"postgres://x", "mysql://u@h:99999/", "mysql://u@h:abc/", "mysql://u@h/?ssl-mode=maybe",
                   "mysql://u@h/?bogus=1", "mysql://u@[::1/", "mysql://u%2@h/", "mysql://u@h/?read-timeout=-1",
                   "mysql://u@h/?compression-level=0", "mysql://u@h/?compress=maybe",
                   "mysql://u@h/?pipeline-spin-us=-5", "mysql://u@h/?pipeline-spin-us="}) {
        try {
            config::from_url(u);
            ADD_FAILURE() << u << " was accepted";
        } catch (const error& e) {
            EXPECT_EQ(e.code(), make_error_code(errc::bad_url)) << u;
        }
    }
}

TEST(Config, SeveralHostsAndGaleraSettingsFromAUrl) {
    config c = config::from_url(
        "mysql://u:p@db1:3307,db2,[::1]:3309/shop?host-mode=load-balance&galera-check=1&wsrep-sync-wait=1&host-backoff=2.5");
    ASSERT_EQ(c.hosts.size(), 3u);
    EXPECT_EQ(c.hosts[0].host, "db1");
    EXPECT_EQ(c.hosts[0].port, 3307);
    EXPECT_EQ(c.hosts[1].host, "db2");
    EXPECT_EQ(c.hosts[1].port, 3306);
    EXPECT_EQ(c.hosts[2].host, "::1");
    EXPECT_EQ(c.hosts[2].port, 3309);
    EXPECT_EQ(c.host, "db1");
    EXPECT_EQ(c.database, "shop");
    EXPECT_EQ(c.hosts_mode, host_mode::load_balance);
    EXPECT_TRUE(c.galera_check);
    EXPECT_EQ(c.wsrep_sync_wait, 1);
    EXPECT_EQ(c.host_backoff, std::chrono::milliseconds(2500));
    config one = config::from_url("mysql://u@db1:3307/x");
    EXPECT_TRUE(one.hosts.empty()) << "one host: the plain host and port";
    EXPECT_EQ(one.port, 3307);
    EXPECT_THROW(config::from_url("mysql://u@db1,,db2/x"), error);
    EXPECT_THROW(config::from_url("mysql://u@db1,%2Ftmp%2Fs.sock/x"), error);
    EXPECT_THROW(config::from_url("mysql://u@db1/x?host-mode=nearest"), error);
    EXPECT_THROW(config::from_url("mysql://u@db1/x?wsrep-sync-wait=16"), error);
}

TEST(Config, PoolSettingsFromAUrl) {
    auto pc = pool_config::from_url(
        "mysql://u:p@db1,db2:3307/shop?pool-max-size=32&pool_min_size=4&pool-acquire-timeout=2.5&galera-check=1"
        "&pool-idle-timeout=60&pool-max-lifetime=600&pool-ping-after-idle=0.5&pool-reset-on-return=0");
    EXPECT_EQ(pc.limits.max_size, 32u);
    EXPECT_EQ(pc.limits.min_size, 4u);
    EXPECT_EQ(pc.limits.acquire_timeout, std::chrono::milliseconds(2500));
    EXPECT_EQ(pc.limits.idle_timeout, std::chrono::milliseconds(60000));
    EXPECT_EQ(pc.limits.max_lifetime, std::chrono::milliseconds(600000));
    EXPECT_EQ(pc.limits.ping_after_idle, std::chrono::milliseconds(500));
    EXPECT_FALSE(pc.reset_on_return);
    EXPECT_FALSE(pc.reset_always);
    EXPECT_TRUE(pool_config::from_url("mysql://u@h/d?pool-reset-always=1").reset_always);
    EXPECT_EQ(pc.limits.max_connecting, 2u) << "the default";
    auto storm = pool_config::from_url("mysql://u@h/d?pool-max-connecting=1&pool-connect-jitter=0.25");
    EXPECT_EQ(storm.limits.max_connecting, 1u);
    EXPECT_EQ(storm.limits.connect_jitter, std::chrono::milliseconds(250));
    EXPECT_TRUE(pc.rollback_on_return);
    EXPECT_EQ(pc.connection.hosts.size(), 2u);
    EXPECT_TRUE(pc.connection.galera_check);
    EXPECT_EQ(pc.connection.database, "shop");
    EXPECT_THROW(pool_config::from_url("mysql://u@h/d?pool-max-size=x"), error);
    EXPECT_THROW(pool_config::from_url("mysql://u@h/d?pool-size=3"), error);
    EXPECT_THROW(pool_config::from_url("mysql://u@h/d?pool-min-size=5&pool-max-size=2"), error);
    EXPECT_THROW(pool_config::from_url("mysql://u@h/d?pool-max-size=2&nonsense=1"), error);
}

TEST(Config, TheServersPublicKeyAndTheProgramNameFromAUrl) {
    auto c = config::from_url(
        "mysql://u@h/d?server-public-key-pem=-----BEGIN%20PUBLIC%20KEY-----%0AMIIB%0A-----END%20PUBLIC%20KEY-----"
        "&program-name=nova-api&program-name=nova-conductor");
    EXPECT_EQ(c.server_rsa_public_key, "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----");
    std::vector<std::string> names;
    for (const auto& [k, v] : c.connect_attributes)
        if (k == "program_name") names.push_back(v);
    EXPECT_EQ(names, std::vector<std::string>{"nova-conductor"}) << "one attribute, the last one named";
}

TEST(Config, KeepaliveIsOnByDefaultAndSetFromAUrl) {
    const config d;
    EXPECT_TRUE(d.keepalive);
    EXPECT_EQ(d.keepalive_idle, std::chrono::seconds(30));
    EXPECT_EQ(d.keepalive_interval, std::chrono::seconds(5));
    EXPECT_EQ(d.keepalive_count, 3);
    auto c = config::from_url("mysql://u@h/d?keepalive-idle=10&keepalive_interval=2&keepalive-count=4");
    EXPECT_TRUE(c.keepalive);
    EXPECT_EQ(c.keepalive_idle, std::chrono::seconds(10));
    EXPECT_EQ(c.keepalive_interval, std::chrono::seconds(2));
    EXPECT_EQ(c.keepalive_count, 4);
    EXPECT_FALSE(config::from_url("mysql://u@h/d?keepalive=0").keepalive);
    EXPECT_THROW(config::from_url("mysql://u@h/d?keepalive-idle=0"), error);
    EXPECT_THROW(config::from_url("mysql://u@h/d?keepalive-count=200"), error);
    EXPECT_THROW(config::from_url("mysql://u@h/d?keepalive-interval=1.5"), error);
}

namespace {
std::string temp_file(const std::string& text) {
    char name[] = "/tmp/ambisql_cnf_XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd < 0) throw std::runtime_error("mkstemp");
    ::close(fd);
    std::ofstream(name) << text;
    return name;
}
std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const error& e) {
        return e.what();
    }
    return "(no error)";
}
}  // namespace

TEST(ConfigBuilder, EachSourceSetsOnlyWhatItNamesAndLaterSourcesWin) {
    config base;
    base.host = "localhost";
    base.multi_statements = false;
    const std::string file = temp_file(
        "# a comment\n[mysqld]\nuser = server\n[client]\nuser = from_file\npassword = \"quoted pw\"\n"
        "database = filedb\ndefault_character_set = latin1\nprompt = ignored\n!includedir /nonexistent.d\n");
    config c = config_builder(base).option_file(file).url("mysql://from_url@/urldb?read-timeout=3").build();
    EXPECT_EQ(c.user, "from_url");
    EXPECT_EQ(c.password, "quoted pw") << "the URL named no password: the file's stands";
    EXPECT_EQ(c.database, "urldb");
    EXPECT_EQ(c.charset, "latin1");
    EXPECT_EQ(c.host, "localhost") << "nobody named a host: the base's stands";
    EXPECT_FALSE(c.multi_statements) << "unset is not false, nor true";
    EXPECT_EQ(c.read_timeout.count(), 3000);
    config_builder b(base);
    b.option_file(file).url("mysql://from_url@h/").set("user", "keyword").set("read_timeout", "0.5").set("host", "::1");
    c = b.build();
    EXPECT_EQ(c.user, "keyword");
    EXPECT_EQ(c.read_timeout.count(), 500);
    EXPECT_EQ(c.host, "::1") << "a host setting is taken as it is";
    EXPECT_EQ(config_builder().set("hosts", "a:3307,b").build().hosts.size(), 2u);
    EXPECT_EQ(config_builder().set("cancel-timeout", "1.5").build().cancel_timeout.count(), 1500);
    std::remove(file.c_str());
}

TEST(ConfigBuilder, TlsIsNeverWeakerThanAnySourceAsked) {
    EXPECT_EQ(config_builder().url("mysql://u@h/?ssl-mode=verify-ca").set("ssl-mode", "required").build().ssl,
              ssl_mode::verify_ca);
    EXPECT_EQ(config_builder().set("ssl-mode", "VERIFY_IDENTITY").set("ssl-mode", "preferred").build().ssl,
              ssl_mode::verify_identity);
    EXPECT_EQ(config_builder().url("mysql://u@h/?ssl-mode=preferred").set("ssl-mode", "disabled").build().ssl,
              ssl_mode::disabled)
        << "disabled, asked for, wins over preferred";
    const std::string m = message_of([] {
        config_builder().url("mysql://u@h/?ssl-mode=required").set("ssl-mode", "disabled", "keyword ssl_mode").build();
    });
    EXPECT_NE(m.find("conflicts"), std::string::npos) << m;
    EXPECT_NE(m.find("keyword ssl_mode"), std::string::npos) << m;
    EXPECT_NE(m.find("the URL"), std::string::npos) << m;
    const std::string verify = temp_file("[client]\nssl-verify-server-cert\n");
    EXPECT_EQ(config_builder().option_file(verify).build().ssl, ssl_mode::verify_identity);
    const std::string ca = temp_file("[client]\nssl-ca = /etc/ca.pem\n");
    config c = config_builder().option_file(ca).build();
    EXPECT_EQ(c.ssl, ssl_mode::verify_identity) << "a CA in the option file verifies, as PyMySQL reads it";
    EXPECT_EQ(c.ssl_ca, "/etc/ca.pem");
    const std::string skip = temp_file("[client]\nskip-ssl\n");
    EXPECT_EQ(config_builder().option_file(skip).build().ssl, ssl_mode::disabled);
    const std::string cipher = temp_file("[client]\nssl-cipher = AES128-SHA\n");
    EXPECT_NE(message_of([&] { config_builder().option_file(cipher); }).find("refused rather than ignored"),
              std::string::npos);
    for (const auto& f : {verify, ca, skip, cipher}) std::remove(f.c_str());
}

TEST(ConfigBuilder, ErrorsNameTheSettingAndItsSource) {
    try {
        config_builder().set("read_timeout", "soon", "keyword argument read_timeout");
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::bad_config));
        EXPECT_EQ(e.diag().message.rfind("keyword argument read_timeout: bad value for read-timeout", 0), 0u)
            << e.what();
    }
    EXPECT_NE(message_of([] { config_builder().set("ssl-mode", "sometimes"); }).find("unknown ssl-mode"),
              std::string::npos);
    EXPECT_NE(message_of([] { config_builder().set("no-such-thing", "1"); }).find("unknown parameter"),
              std::string::npos);
    try {
        config_builder().option_file("/nonexistent/my.cnf");
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::option_file_unreadable));
        EXPECT_NE(std::string(e.what()).find("/nonexistent/my.cnf"), std::string::npos);
    }
    EXPECT_THROW(config::from_url("mysql://u@h/?ssl-mode=sometimes"), error) << "a URL's errors are still bad_url";
}
