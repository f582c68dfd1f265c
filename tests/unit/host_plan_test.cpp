// host_plan: the order hosts are tried in, the deny list with back-off, one deadline.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "ambisql/detail/host_plan.hpp"

namespace ambisql::detail {
namespace {

config three(const std::string& tag) {
    config c;
    for (int i = 1; i <= 3; ++i) c.hosts.push_back({tag + std::to_string(i), static_cast<std::uint16_t>(3306 + i)});
    return c;
}

std::vector<std::string> order(host_plan& p) {
    std::vector<std::string> out;
    config one;
    while (p.next(one)) {
        EXPECT_TRUE(one.hosts.empty());
        out.push_back(one.host);
    }
    return out;
}

diagnostics refused() {
    diagnostics d;
    d.kind = error_kind::network;
    d.code = make_error_code(errc::connect_failed);
    d.message = "connection refused";
    return d;
}

TEST(HostPlan, SequentialTriesHostsInOrderAndAFailedOneGoesLast) {
    config c = three("seq");
    host_plan first(c);
    EXPECT_EQ(order(first), (std::vector<std::string>{"seq1", "seq2", "seq3"}));
    host_plan p(c);
    config one;
    ASSERT_TRUE(p.next(one));
    p.failed(refused());  // seq1 is passed over for host_backoff
    ASSERT_TRUE(p.next(one));
    p.succeeded();
    host_plan later(c);
    EXPECT_EQ(order(later), (std::vector<std::string>{"seq2", "seq3", "seq1"}));
    c.host_backoff = std::chrono::milliseconds(1);  // (the back-off set at the failure stands)
    host_plan exhausted(c);
    while (exhausted.next(one)) exhausted.failed(refused());
    auto d = exhausted.exhausted(refused());
    EXPECT_EQ(d.code, make_error_code(errc::connect_failed));
    EXPECT_NE(d.message.find("seq2:3308: connection refused"), std::string::npos) << d.message;
}

TEST(HostPlan, LoadBalanceVariesTheOrder) {
    config c = three("lb");
    c.hosts_mode = host_mode::load_balance;
    std::set<std::string> firsts;
    for (int i = 0; i < 64; ++i) {
        host_plan p(c);
        auto o = order(p);
        ASSERT_EQ(o.size(), 3u);
        firsts.insert(o.front());
    }
    EXPECT_EQ(firsts.size(), 3u) << "each host comes first now and then";
}

TEST(HostPlan, OneDeadlineForEveryHost) {
    config c = three("dl");
    c.connect_timeout = std::chrono::milliseconds(3000);
    host_plan p(c);
    config one;
    ASSERT_TRUE(p.next(one));
    EXPECT_EQ(one.connect_timeout, std::chrono::milliseconds(1000)) << "a third of what remains";
    c.connect_timeout = std::chrono::milliseconds(1);
    host_plan q(c);
    ASSERT_TRUE(q.next(one));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_FALSE(q.next(one)) << "past the deadline nothing more is tried";
}

TEST(HostPlan, GaleraStatusAndSessionSetup) {
    config c;
    EXPECT_FALSE(host_plan::needed(c));
    c.galera_check = true;
    c.wsrep_sync_wait = 3;
    EXPECT_TRUE(host_plan::needed(c));
    host_plan p(c);
    EXPECT_NE(p.galera_query(), nullptr);
    EXPECT_EQ(p.session_setup(), "SET SESSION wsrep_sync_wait = 3");
    results empty;
    EXPECT_FALSE(host_plan::galera_ok(empty));
}

}  // namespace
}  // namespace ambisql::detail
