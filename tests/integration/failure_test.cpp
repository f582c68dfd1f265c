// Connections that die: killed by the server, mid-query or idle.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "ambisql/retry.hpp"
#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

namespace {
// A TCP peer on loopback that accepts one connection and sends `bytes` one byte every
// `gap`, then holds the connection open until stopped.
struct trickler {
    int lfd = -1;
    std::uint16_t port = 0;
    std::thread th;
    std::atomic<bool> stop{false};
    trickler(std::string bytes, std::chrono::milliseconds gap) {
        lfd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 1) != 0 ||
            ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("trickler: cannot listen");
        port = ntohs(a.sin_port);
        th = std::thread([this, bytes = std::move(bytes), gap] {
            int fd = ::accept(lfd, nullptr, nullptr);
            if (fd < 0) return;
            for (std::size_t i = 0; !stop; ++i) {
                if (i < bytes.size() && ::send(fd, &bytes[i], 1, MSG_NOSIGNAL) != 1) break;
                std::this_thread::sleep_for(gap);
            }
            ::close(fd);
        });
    }
    ~trickler() {
        stop = true;
        ::shutdown(lfd, SHUT_RDWR);
        ::close(lfd);
        th.join();
    }
};
}  // namespace

TEST(Failure, ConnectTimeoutBoundsTheWholeHandshakeAgainstATricklingServer) {
    // 4000 bytes at one per 50 ms: each wait is short, the whole would take 200 s.
    // A packet header claiming 4000 bytes, then the bytes.
    trickler peer(std::string("\xa0\x0f\x00\x00", 4) + std::string(3996, 'x'), std::chrono::milliseconds(50));
    config cfg = tcp_config();
    cfg.port = peer.port;
    cfg.connect_timeout = std::chrono::milliseconds(600);
    auto t0 = std::chrono::steady_clock::now();
    try {
        connection c(cfg);
        FAIL() << "connected to a trickling peer";
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::timeout)) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
    // The poll API has the same bound.
    trickler peer2(std::string("\xa0\x0f\x00\x00", 4) + std::string(3996, 'x'), std::chrono::milliseconds(50));
    cfg.port = peer2.port;
    nb_connection n(cfg);
    t0 = std::chrono::steady_clock::now();
    n.start_connect();
    for (;;) {
        auto w = n.poll();
        if (w.done()) break;
        pollfd p{n.fileno(), static_cast<short>(w.events() & wait_for::read ? POLLIN : POLLOUT), 0};
        ::poll(&p, 1, 50);
    }
    EXPECT_FALSE(n.ok());
    EXPECT_EQ(n.error().code, make_error_code(errc::timeout)) << n.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
}

TEST(Failure, KilledWhileIdleGivesANetworkErrorAndNoHang) {
    connection victim(tcp_config());
    connection admin(tcp_config());
    admin.query("KILL CONNECTION ?", victim.connection_id());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto t0 = std::chrono::steady_clock::now();
    try {
        victim.query("SELECT 1");
        FAIL() << "a killed connection answered";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::network) << e.what();
        EXPECT_FALSE(e.connection_usable());
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_FALSE(victim.is_open());
    try {
        victim.query("SELECT 1");
        FAIL();
    } catch (const error& e) {
        EXPECT_EQ(e.code(), make_error_code(errc::connection_broken));
    }
}

TEST(Failure, KilledMidQueryGivesANetworkError) {
    for (bool tls : {false, true}) {
        config cfg = tcp_config();
        if (tls) cfg.ssl = ssl_mode::required;
        connection victim(cfg);
        connection admin(tcp_config());
        auto id = victim.connection_id();
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            admin.query("KILL CONNECTION ?", id);
        });
        auto t0 = std::chrono::steady_clock::now();
        try {
            victim.query("SELECT SLEEP(10)");
            ADD_FAILURE() << "the query outlived its connection";
        } catch (const error& e) {
            EXPECT_EQ(e.kind(), error_kind::network) << e.what();
            EXPECT_FALSE(e.connection_usable());
        }
        killer.join();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    }
}

// The connection records what had been sent when it failed, and classify() goes by it
// (it used to assume statements had been sent: a refused connect, or a statement never
// sent on a dead connection, was "outcome unknown").
TEST(Failure, AFailureCarriesWhatWasSentAndIsClassifiedByIt) {
    config refused = tcp_config();
    refused.port = 1;
    try {
        connection c(refused);
        FAIL() << "connected to port 1";
    } catch (const error& e) {
        EXPECT_TRUE(e.diag().sent.known);
        EXPECT_FALSE(e.diag().sent.statements);
        EXPECT_EQ(classify(e), failure_class::retriable) << e.what();
    }
    for (bool in_transaction : {false, true}) {
        connection victim(tcp_config());
        connection admin(tcp_config());
        if (in_transaction) victim.query("BEGIN");
        const auto id = victim.connection_id();
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            admin.query("KILL CONNECTION ?", id);
        });
        try {
            victim.query("SELECT SLEEP(10)");
            ADD_FAILURE() << "the query outlived its connection";
        } catch (const error& e) {
            const auto& sent = e.diag().sent;
            EXPECT_TRUE(sent.known && sent.statements && !sent.commit);
            EXPECT_EQ(sent.in_transaction, in_transaction);
            EXPECT_EQ(classify(e), in_transaction ? failure_class::retriable : failure_class::outcome_unknown)
                << "in a transaction the server rolls back with the connection; an autocommit statement may stand";
        }
        killer.join();
        try {  // known broken: nothing is sent
            victim.query("INSERT INTO nowhere VALUES (1)");
            ADD_FAILURE();
        } catch (const error& e) {
            EXPECT_FALSE(e.diag().sent.statements);
            EXPECT_EQ(classify(e), failure_class::retriable);
        }
    }
    connection c(tcp_config());
    c.query("BEGIN");
    c.query("COMMIT");  // (recorded: a COMMIT failing now would leave its outcome unknown)
    try {
        c.query("  commit  /* again */");
        c.query("XA COMMIT 'none'");
        FAIL() << "XA COMMIT of no transaction";
    } catch (const error& e) {
        EXPECT_TRUE(e.diag().sent.commit) << "XA COMMIT is a COMMIT";
        EXPECT_EQ(classify(e), failure_class::fatal) << "refused by the server";
    }
}

TEST(Failure, KillQueryKeepsTheConnectionUsable) {
    connection victim(tcp_config());
    connection admin(tcp_config());
    auto id = victim.connection_id();
    std::thread killer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        admin.query("KILL QUERY ?", id);
    });
    try {
        victim.query("SELECT SLEEP(10)");
        ADD_FAILURE() << "KILL QUERY did not interrupt the query";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::server) << e.what();
        EXPECT_EQ(e.server_code(), 1317) << e.what();  // ER_QUERY_INTERRUPTED
        EXPECT_TRUE(e.connection_usable());
    }
    killer.join();
    EXPECT_EQ(victim.query("SELECT 7").row(0)[0].as<int>(), 7);
}

TEST(Failure, KilledDuringAStreamedResult) {
    connection victim(unix_config());
    connection admin(tcp_config());
    auto st = victim.stream("SELECT seq, SLEEP(0.001) FROM seq_1_to_100000");
    row_view row;
    ASSERT_TRUE(st.next(row));
    admin.query("KILL CONNECTION ?", victim.connection_id());
    try {
        while (st.next(row)) {
        }
        FAIL() << "the stream ended normally after its connection was killed";
    } catch (const error& e) {
        EXPECT_EQ(e.kind(), error_kind::network) << e.what();
    }
    EXPECT_FALSE(victim.is_open());
}
