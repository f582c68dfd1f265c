// Protocol compression against the real server: negotiated, seen by the server, smaller
// on the wire, with TLS and over the unix socket, and through the poll() API. (The type,
// query, statement, pipeline and LOCAL INFILE suites run compressed as well: ctest's
// "compressed." tests.)
#include <poll.h>

#include <random>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

namespace {

config compressed(config c) {
    c.compress = true;
    return c;
}

std::uint64_t session_status(connection& c, std::string_view name) {
    auto r = c.query("SELECT CAST(VARIABLE_VALUE AS UNSIGNED) FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = ?", name);
    return r.row(0)[0].as<std::uint64_t>();
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::mt19937 rng(seed);
    for (auto& ch : s) ch = static_cast<char>(rng());
    return s;
}

}  // namespace

TEST(Compression, NegotiatedOnlyWhenAskedAndTheServerSeesIt) {
    connection plain(tcp_config());
    if (!compressed_run()) {
        EXPECT_FALSE(plain.compressed());
        EXPECT_EQ(plain.query("SHOW SESSION STATUS LIKE 'Compression'").row(0)[1].as<std::string_view>(), "OFF");
    }
    connection z(compressed(tcp_config()));
    EXPECT_TRUE(z.compressed());
    EXPECT_EQ(z.query("SHOW SESSION STATUS LIKE 'Compression'").row(0)[1].as<std::string_view>(), "ON");
    EXPECT_TRUE(config::from_url(env().url + "?compress=1").compress);
}

TEST(Compression, ALargeCompressibleResultIsSmallerOnTheWire) {
    auto sent_for = [](connection& c) {
        std::uint64_t before = session_status(c, "BYTES_SENT");
        auto r = c.query("SELECT REPEAT('abcdefgh', 1 << 17)");  // 1 MiB
        EXPECT_EQ(r.row(0)[0].as<std::string_view>().size(), 1u << 20);
        return session_status(c, "BYTES_SENT") - before;
    };
    config cfg = tcp_config();
    cfg.compress = false;
    connection plain(cfg);
    connection z(compressed(tcp_config()));
    std::uint64_t p = sent_for(plain), q = sent_for(z);
    EXPECT_GT(p, 1u << 20);
    EXPECT_LT(q, p / 20) << "plain " << p << " bytes, compressed " << q;
}

TEST(Compression, TwentyMiBBothWaysWithTlsAndOverTheUnixSocket) {
    const std::string blob = random_bytes(20 << 20, 11);  // incompressible: stored frames
    const std::string text(20 << 20, 'x');                // deflates to almost nothing
    config over_tls = compressed(tcp_config());
    over_tls.ssl = ssl_mode::verify_identity;
    over_tls.ssl_ca = env().ca;
    over_tls.host = "localhost";
    for (const config& cfg : {over_tls, compressed(unix_config())}) {
        connection c(cfg);
        EXPECT_TRUE(c.compressed());
        EXPECT_EQ(c.tls_active(), cfg.ssl == ssl_mode::verify_identity);
        std::string t = unique_table("zblob");
        c.query("CREATE TEMPORARY TABLE " + t + " (id INT, b LONGBLOB)");
        c.query("INSERT INTO " + t + " VALUES (1, ?)", bytes(std::string_view(blob)));  // 40 MiB of hex
        c.execute("INSERT INTO " + t + " VALUES (2, ?)", bytes(std::string_view(text)));  // long data
        auto r = c.query("SELECT id, b, MD5(b) = MD5(?) FROM " + t + " ORDER BY id", bytes(std::string_view(blob)));
        ASSERT_EQ(r.row_count(), 2u);
        EXPECT_EQ(r.row(0)[2].as<int>(), 1) << "the server stored the exact bytes";
        EXPECT_TRUE(r.row(0)[1].as<std::string_view>() == blob) << "the client read the exact bytes back";
        EXPECT_TRUE(r.row(1)[1].as<std::string_view>() == text);
        auto s = c.execute("SELECT b FROM " + t + " WHERE id = ?", 1);
        EXPECT_TRUE(s.row(0)[0].as<std::string_view>() == blob) << "binary protocol too";
    }
}

TEST(Compression, PollDrivenQueriesAndAPipelineOfLargeStages) {
    nb_connection c(compressed(unix_config()));
    auto drive = [&] {
        for (;;) {
            auto w = c.poll();
            if (w.done()) return;
            pollfd p{c.fileno(), static_cast<short>(w.events() & wait_for::read ? POLLIN : POLLOUT), 0};
            ASSERT_GE(::poll(&p, 1, 5000), 0);
        }
    };
    c.start_connect();
    drive();
    c.check();
    EXPECT_TRUE(c.compressed());
    c.start_query("SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM seq_1_to_5000");
    drive();
    c.check();
    ASSERT_EQ(c.result().row_count(), 5000u);
    EXPECT_EQ(c.result().row(4999)[1].as<std::string_view>(), std::string(1000, char(65 + 5000 % 26)));

    // Stages whose requests are split across frames (the pipeline's send window is 64 KiB)
    // and a failing stage in the middle.
    const std::string big(300 * 1024, 'p');
    pipeline pl;
    for (int i = 0; i < 20; ++i) {
        if (i == 10) pl.query("SELECT * FROM no_such_table_here");
        pl.query("SELECT LENGTH(?), ?", std::string_view(big), i);
        pl.execute("SELECT ? + 1", i);
    }
    c.start_pipeline(pl);
    drive();
    c.check();
    for (std::size_t i = 0, n = 0; i < pl.size(); ++i) {
        if (i == 20) {
            EXPECT_FALSE(pl[i].ok());
            EXPECT_EQ(pl[i].error().server_code, 1146);
            continue;
        }
        ASSERT_TRUE(pl[i].ok()) << i << ": " << pl[i].error().message;
        if (i % 2 == (i > 20 ? 1 : 0)) {
            EXPECT_EQ(pl[i].result().row(0)[0].as<std::uint64_t>(), big.size());
            EXPECT_EQ(pl[i].result().row(0)[1].as<std::int64_t>(), static_cast<std::int64_t>(n++));
        }
    }
    c.start_query("SELECT 1");
    drive();
    c.check();
    EXPECT_EQ(c.result().row(0)[0].as<int>(), 1) << "still in step";
}

TEST(Compression, TwentyMiBOfLocalInfileDataGoOutInFramesThatAnswerTheRequest) {
    // The file's packets are a reply within the query's exchange, numbered on from the
    // server's request; 20 MiB of them take more than one frame.
    config cfg = compressed(unix_config());
    std::mt19937 rng(5);
    std::string file;
    std::size_t rows = 0;
    static const char hex[] = "0123456789abcdef";
    while (file.size() < (20u << 20)) {
        file += std::to_string(rows++) + '\t';
        for (int i = 0; i < 64; ++i) file += hex[rng() & 15];
        file += '\n';
    }
    cfg.local_infile_handler = [&](std::string_view name, std::string& data) {
        if (name != "big.tsv") return false;
        data = file;
        return true;
    };
    connection c(cfg);
    ASSERT_TRUE(c.compressed());
    std::string t = unique_table("zinfile");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT, v CHAR(64))");
    EXPECT_EQ(c.query("LOAD DATA LOCAL INFILE 'big.tsv' INTO TABLE " + t).affected_rows(), rows);
    auto r = c.query("SELECT COUNT(*), CAST(SUM(id) AS SIGNED), MAX(LENGTH(v)) FROM " + t);
    EXPECT_EQ(r.row(0)[0].as<std::uint64_t>(), rows);
    EXPECT_EQ(r.row(0)[1].as<std::int64_t>(), static_cast<std::int64_t>((rows - 1) * rows / 2));
    EXPECT_EQ(r.row(0)[2].get_int(), 64);
}
