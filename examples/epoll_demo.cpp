// Many connections, one thread, raw epoll: the poll()/fileno() API driven by hand.
//   epoll_demo <mysql://user:password@host:port/db> [connections]
#include <sys/epoll.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ambisql/ambisql.hpp"

int main(int argc, char** argv) {
    if (argc < 2) return std::fprintf(stderr, "usage: epoll_demo URL [connections]\n"), 2;
    const auto cfg = ambisql::config::from_url(argv[1]);
    const int n = argc > 2 ? std::atoi(argv[2]) : 50;
    std::vector<ambisql::nb_connection> conns(n);
    std::vector<int> step(n, 0);  // 0: connecting, 1: querying, 2: done
    int ep = epoll_create1(0), left = n;
    auto t0 = std::chrono::steady_clock::now();

    // Polls connection i, moves it to its next step when an operation is done, and
    // re-arms epoll for whatever it waits for next.
    auto advance = [&](int i) {
        auto& c = conns[i];
        for (auto w = c.poll();; w = c.poll()) {
            if (!w.done()) {
                epoll_event ev{static_cast<unsigned>(w.events() & ambisql::wait_for::read ? EPOLLIN : EPOLLOUT) | EPOLLONESHOT, {}};
                ev.data.u32 = static_cast<unsigned>(i);
                if (epoll_ctl(ep, EPOLL_CTL_MOD, c.fileno(), &ev) != 0) epoll_ctl(ep, EPOLL_CTL_ADD, c.fileno(), &ev);
                return;
            }
            c.check();  // throws ambisql::error on failure
            if (step[i]++ == 0) {
                c.start_query("SELECT SLEEP(0.5), ?", i);
                continue;
            }
            std::printf("connection %d: %s\n", i, c.result().row(0)[1].to_string().c_str());
            epoll_ctl(ep, EPOLL_CTL_DEL, c.fileno(), nullptr);
            --left;
            return;
        }
    };
    for (int i = 0; i < n; ++i) {
        conns[i].set_config(cfg);
        conns[i].start_connect();
        advance(i);
    }
    epoll_event events[64];
    while (left > 0) {
        int k = epoll_wait(ep, events, 64, 1000);
        for (int j = 0; j < k; ++j) advance(static_cast<int>(events[j].data.u32));
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%d connections, each SELECT SLEEP(0.5), one thread: %.2f s\n", n, s);
}
