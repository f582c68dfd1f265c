// The cancellation verdict and the KILL's repeat schedule, shared by every driver.
#include <gtest/gtest.h>

#include "io/cancel.hpp"

using namespace ambisql;
using namespace ambisql::detail;

namespace {
diagnostics server_error(std::uint16_t code, bool usable = true) {
    diagnostics d;
    d.kind = error_kind::server;
    d.code = std::error_code(code, server_category());
    d.server_code = code;
    d.message = "server says " + std::to_string(code);
    d.connection_usable = usable;
    return d;
}
}  // namespace

TEST(Cancel, OnlyAnInterruptedCommandIsReportedCancelled) {
    // Interrupted by the KILL (ER_QUERY_INTERRUPTED): cancelled, connection usable.
    diagnostics v = cancel_verdict(server_error(1317), false);
    EXPECT_EQ(v.code, make_error_code(errc::cancelled));
    EXPECT_TRUE(v.connection_usable);
    // Completed before the KILL landed: its real outcome, success included.
    EXPECT_EQ(cancel_verdict(diagnostics{}, false).kind, error_kind::none);
    v = cancel_verdict(server_error(1062), false);
    EXPECT_EQ(v.server_code, 1062) << "failed by itself: the caller sees its own error";
    // A streamed result discarded to bring the connection back in step: cancelled.
    EXPECT_EQ(cancel_verdict(diagnostics{}, true).code, make_error_code(errc::cancelled));
    // Undeliverable: cancelled, and the connection closed.
    diagnostics why;
    why.message = "too many connections";
    v = cancel_failed(why);
    EXPECT_EQ(v.code, make_error_code(errc::cancelled));
    EXPECT_FALSE(v.connection_usable);
    EXPECT_NE(v.message.find("too many connections"), std::string::npos);
}

TEST(Cancel, TheKillIsRepeatedAtASteadyPaceAfterEachAnswer) {
    kill_schedule s;
    EXPECT_EQ(s.retry_at(), clock::time_point::max()) << "nothing delivered, nothing to repeat";
    const auto t0 = clock::now();
    s.delivered(t0);
    EXPECT_EQ(s.retry_at(), t0 + kill_schedule::retry_every);
    for (int i = 1; i < 10; ++i) {  // never growing: a late statement is killed one interval after it begins
        s.delivered(t0 + i * std::chrono::milliseconds(250));
        EXPECT_EQ(s.retry_at(), t0 + i * std::chrono::milliseconds(250) + kill_schedule::retry_every);
    }
    s.reset();
    EXPECT_EQ(s.retry_at(), clock::time_point::max());
}
