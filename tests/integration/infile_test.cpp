// LOAD DATA LOCAL INFILE: off by default, and when enabled only for the file the
// statement named and the application allowed.
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

namespace {
std::string write_temp(const std::string& contents) {
    std::string path = "/tmp/ambisql_infile_" + std::to_string(::getpid()) + "_" + unique_table("f") + ".tsv";
    std::ofstream(path, std::ios::binary) << contents;
    return path;
}
}  // namespace

TEST(LocalInfile, RefusedByDefaultAndTheConnectionStaysUsable) {
    std::string path = write_temp("1\tsecret\n");
    connection c(unix_config());
    std::string t = unique_table("infile");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT, v VARCHAR(20))");
    try {
        c.query("LOAD DATA LOCAL INFILE '" + path + "' INTO TABLE " + t);
        ADD_FAILURE() << "a LOCAL INFILE was sent without being enabled";
    } catch (const error& e) {
        EXPECT_TRUE(e.connection_usable()) << e.what();
    }
    EXPECT_EQ(c.query("SELECT COUNT(*) FROM " + t).row(0)[0].get_int(), 0);
    ::unlink(path.c_str());
}

TEST(LocalInfile, AnAllowedFileIsSentAndOthersAreRefused) {
    std::string allowed = write_temp("1\tone\n2\tit's\n3\t\\N\n");
    std::string other = write_temp("9\tnot allowed\n");
    config cfg = unix_config();
    cfg.local_infile_allow = {allowed};
    connection c(cfg);
    std::string t = unique_table("infile");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT, v VARCHAR(20))");
    results r = c.query("LOAD DATA LOCAL INFILE ? INTO TABLE " + t, allowed);
    EXPECT_EQ(r.affected_rows(), 3u);
    results back = c.query("SELECT id, v FROM " + t + " ORDER BY id");
    ASSERT_EQ(back.row_count(), 3u);
    EXPECT_EQ(back.row(1)[1].get_text(), "it's");
    EXPECT_TRUE(back.row(2)[1].is_null());
    try {
        c.query("LOAD DATA LOCAL INFILE '" + other + "' INTO TABLE " + t);
        ADD_FAILURE() << "a file outside the allow list was sent";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::local_infile_refused));
        EXPECT_TRUE(e.connection_usable());
    }
    EXPECT_EQ(c.query("SELECT COUNT(*) FROM " + t).row(0)[0].get_int(), 3) << "nothing of the refused file arrived";
    ::unlink(allowed.c_str());
    ::unlink(other.c_str());
}

TEST(LocalInfile, AHandlerProducesTheDataAndCanRefuse) {
    config cfg = tcp_config();
    std::vector<std::string> asked;
    cfg.local_infile_handler = [&](std::string_view name, std::string& data) {
        asked.emplace_back(name);
        if (name != "virtual.csv") return false;
        for (int i = 0; i < 100000; ++i) data += std::to_string(i) + "\trow" + std::to_string(i) + "\n";  // 1.6 MB: two packets
        return true;
    };
    connection c(cfg);
    std::string t = unique_table("infile");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT, v VARCHAR(20))");
    EXPECT_EQ(c.query("LOAD DATA LOCAL INFILE 'virtual.csv' INTO TABLE " + t).affected_rows(), 100000u);
    EXPECT_EQ(c.query("SELECT CAST(SUM(id) AS SIGNED) FROM " + t).row(0)[0].as<std::int64_t>(), 99999LL * 100000 / 2);
    try {
        c.query("LOAD DATA LOCAL INFILE 'other.csv' INTO TABLE " + t);
        ADD_FAILURE();
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::local_infile_refused));
    }
    EXPECT_EQ(asked, (std::vector<std::string>{"virtual.csv", "other.csv"}));
    EXPECT_EQ(c.query("SELECT COUNT(*) FROM " + t).row(0)[0].get_int(), 100000);
}

TEST(LocalInfile, ALargeAllowedFileIsStreamedNotLoadedIntoMemory) {
    // 48 MiB of rows: read 1 MiB at a time as the socket takes them, so the process
    // grows by far less than the file (reading it whole, then framing it, took twice its
    // size; the bound leaves room for ASan's quarantine of zlib's per-frame state when
    // compressed).
    std::string path = "/tmp/ambisql_infile_big_" + std::to_string(::getpid()) + ".tsv";
    std::size_t rows = 0;
    {
        std::ofstream out(path, std::ios::binary);
        std::string line;
        for (std::size_t size = 0; size < (48u << 20); size += line.size(), ++rows) {
            line = std::to_string(rows) + '\t' + std::string(90, static_cast<char>('a' + rows % 26)) + '\n';
            out << line;
        }
    }
    config cfg = unix_config();
    cfg.local_infile_allow = {path};
    connection c(cfg);
    std::string t = unique_table("bigfile");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT, v CHAR(90))");
    c.query("SELECT 1");  // the connection's buffers at their working size
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    EXPECT_EQ(c.query("LOAD DATA LOCAL INFILE ? INTO TABLE " + t, path).affected_rows(), rows);
    ::getrusage(RUSAGE_SELF, &after);
    EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 32 * 1024) << "peak resident growth in KiB while sending 48 MiB";
    auto r = c.query("SELECT COUNT(*), CAST(SUM(id) AS SIGNED) FROM " + t);
    EXPECT_EQ(r.row(0)[0].as<std::uint64_t>(), rows);
    EXPECT_EQ(r.row(0)[1].as<std::int64_t>(), static_cast<std::int64_t>((rows - 1) * rows / 2));
    ::unlink(path.c_str());
}
