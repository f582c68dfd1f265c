// How a blocking connection paces its receives of a large result (config.read_coalescing):
// when the rows of a large result stop coming for a moment, the receive that finds the
// socket empty sleeps once before it waits, so that what arrives meanwhile is read in one
// batch. This binary replaces nanosleep (the library calls the executable's) to see each
// such nap on the calling thread; every call still sleeps through the C library's.
#include <dlfcn.h>
#include <time.h>

#include <chrono>

#include "common.hpp"

namespace {
thread_local int naps = 0;                 // nanosleeps of the watched length on this thread
thread_local long watched_ns = -1;         // the length to count
}  // namespace

extern "C" int nanosleep(const timespec* req, timespec* rem) {
    using fn = int (*)(const timespec*, timespec*);
    static fn real = reinterpret_cast<fn>(::dlsym(RTLD_NEXT, "nanosleep"));
    if (req && req->tv_sec == 0 && req->tv_nsec == watched_ns) ++naps;
    return real(req, rem);
}

using namespace ambisql;
using namespace ambisql::test;

namespace {
constexpr std::chrono::microseconds nap_length{2345};

connection watched(std::chrono::microseconds coalescing) {
    config cfg = unix_config();
    cfg.read_coalescing = coalescing;
    watched_ns = static_cast<long>(nap_length.count()) * 1000;
    naps = 0;
    return connection(cfg);
}

// 20 000 rows of ~210 bytes (4.2 MB); the server stops for 20 ms after every 2 000 rows
// (~420 KB), so the client finds the socket empty mid-result at least 9 times.
constexpr const char* stalling_result =
    "SELECT REPEAT('x', 200), seq, IF(seq % 2000 = 0, SLEEP(0.02), 0) FROM seq_1_to_20000";
}  // namespace

TEST(Pacing, ALargeResultThatStallsIsReadAfterANap) {
    auto c = watched(nap_length);
    auto r = c.query(stalling_result);
    ASSERT_EQ(r.row_count(), 20000u);
    EXPECT_EQ(r.row(19999)[1].get_int(), 20000);
    EXPECT_GE(naps, 5) << "each stall after the first 256 KiB naps once";
    EXPECT_LE(naps, 2000) << "a nap per stall, not per row";
}

TEST(Pacing, AStreamedResultNapsAcrossItsBatches) {
    auto c = watched(nap_length);
    auto st = c.stream(stalling_result);
    row_view row;
    std::int64_t n = 0, sum = 0;
    while (st.next(row)) {
        ++n;
        sum += row[1].get_int();
    }
    EXPECT_EQ(n, 20000);
    EXPECT_EQ(sum, 20000LL * 20001 / 2);
    EXPECT_GE(naps, 5);
}

TEST(Pacing, NoNapWhenOffOrForSmallResultsOrInsideALargeRow) {
    {
        auto c = watched(std::chrono::microseconds(0));
        EXPECT_EQ(c.query(stalling_result).row_count(), 20000u);
        EXPECT_EQ(naps, 0) << "read_coalescing = 0 turns it off";
    }
    {
        auto c = watched(nap_length);
        for (int i = 0; i < 50; ++i) EXPECT_EQ(c.query("SELECT ?, SLEEP(0.001)", i).row(0)[0].get_int(), i);
        // 200 KB in all, stalling every 100 rows: below the 256 KiB a result needs first.
        EXPECT_EQ(c.query("SELECT REPEAT('x', 200), IF(seq % 100 = 0, SLEEP(0.005), 0) FROM seq_1_to_1000")
                      .row_count(),
                  1000u);
        // The same through a prepared statement, twice: each result counts from its start.
        for (int i = 0; i < 2; ++i)
            EXPECT_EQ(c.execute("SELECT REPEAT('x', 200), IF(seq % 100 = 0, SLEEP(0.005), 0) FROM seq_1_to_1000")
                          .row_count(),
                      1000u);
        EXPECT_EQ(naps, 0) << "small results are read as soon as they come";
        // One 16 MiB row: while the rest of a packet is known to be on its way, no nap
        // (at most one at its very end).
        auto r = c.query("SELECT REPEAT('y', 16 * 1024 * 1024)");
        EXPECT_EQ(r.row(0)[0].get_text().size(), 16u * 1024 * 1024);
        EXPECT_LE(naps, 1);
    }
}
