// ambisql_blackhole TARGET_HOST TARGET_PORT: a path to the test server that can vanish
// without a word, for the partition tests of every model (C++ and Python alike).
//
// It makes a network namespace joined to this one by a veth pair (a /30 of 10.213.0.0/16
// chosen by its pid, the neighbour entry made permanent so no ARP failure ends anything
// early), listens inside the namespace, and relays every connection to TARGET in this
// one. Clients connect to the address it prints. On SIGUSR1 it takes the namespace's end
// of the link down: from then on packets are simply lost, no FIN, no RST, new connects
// unanswered (a partition, a power loss); SIGUSR2 brings it back. SIGTERM (or its
// parent's death) removes the namespace and ends it.
//
// stdout, a line each: "READY <address> <port>" once listening, "DOWN" and "UP" once done,
// or "UNAVAILABLE <reason>" (exit 77) where namespaces cannot be made here (not root, no
// iproute2, no veth): the tests then skip with that reason.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::string ns_name, host_dev, ns_dev;

bool run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

[[noreturn]] void unavailable(const std::string& why) {
    std::printf("UNAVAILABLE %s\n", why.c_str());
    std::fflush(stdout);
    if (!ns_name.empty()) run("ip netns del " + ns_name);
    std::_Exit(77);
}

// Namespaces left by a helper that died without cleaning up.
void remove_stale() {
    DIR* d = ::opendir("/var/run/netns");
    if (!d) return;
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.rfind("ambisql-bh-", 0) != 0) continue;
        const long pid = std::strtol(name.c_str() + 11, nullptr, 10);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) run("ip netns del " + name);
    }
    ::closedir(d);
}

void pump(int from, int to) {
    char buf[16384];
    for (;;) {
        const ssize_t n = ::recv(from, buf, sizeof buf, 0);
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
            const ssize_t w = ::send(to, buf + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
            if (w <= 0) {
                ::shutdown(from, SHUT_RDWR);
                return;
            }
            off += w;
        }
    }
    ::shutdown(to, SHUT_WR);
}

int upstream(const char* host, const char* port) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (::getaddrinfo(host, port, &hints, &res) != 0) return -1;
    int fd = -1;
    for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
        fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s TARGET_HOST TARGET_PORT\n", argv[0]);
        return 2;
    }
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    sigset_t sigs;
    sigemptyset(&sigs);
    for (int s : {SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGHUP}) sigaddset(&sigs, s);
    ::pthread_sigmask(SIG_BLOCK, &sigs, nullptr);  // taken by sigwait below, in every thread
    if (::geteuid() != 0) unavailable("network namespaces need root");
    if (!run("ip -V")) unavailable("the ip command (iproute2) is missing");
    remove_stale();

    const unsigned pid = static_cast<unsigned>(::getpid());
    ns_name = "ambisql-bh-" + std::to_string(pid);
    host_dev = "abh" + std::to_string(pid % 10000000);
    ns_dev = "abn" + std::to_string(pid % 10000000);
    const unsigned block = (pid % 16384) * 4;  // a /30 of 10.213.0.0/16
    const std::string prefix = "10.213." + std::to_string(block >> 8) + ".";
    const std::string host_addr = prefix + std::to_string((block & 255) + 1);
    const std::string ns_addr = prefix + std::to_string((block & 255) + 2);
    const std::string in_ns = "ip netns exec " + ns_name + " ";

    if (!run("ip netns add " + ns_name)) unavailable("ip netns add failed (no permission for namespaces here)");
    if (!run("ip link add " + host_dev + " type veth peer name " + ns_dev) ||
        !run("ip link set " + ns_dev + " netns " + ns_name))
        unavailable("cannot make a veth pair");
    if (!run("ip addr add " + host_addr + "/30 dev " + host_dev) || !run("ip link set " + host_dev + " up") ||
        !run(in_ns + "ip addr add " + ns_addr + "/30 dev " + ns_dev) || !run(in_ns + "ip link set " + ns_dev + " up") ||
        !run(in_ns + "ip link set lo up"))
        unavailable("cannot configure the veth pair");

    // The namespace's end's MAC, for a permanent neighbour entry: with the link down, ARP
    // would otherwise fail within seconds and turn silence into "no route to host".
    std::string mac;
    if (FILE* f = ::popen((in_ns + "cat /sys/class/net/" + ns_dev + "/address").c_str(), "r")) {
        char line[64] = {};
        if (std::fgets(line, sizeof line, f)) mac = std::string(line, std::strcspn(line, "\n"));
        ::pclose(f);
    }
    if (mac.empty() || !run("ip neigh replace " + ns_addr + " lladdr " + mac + " dev " + host_dev + " nud permanent"))
        unavailable("cannot make the neighbour entry permanent");

    // The listener is made inside the namespace (a socket stays in the namespace it was
    // made in), the relayed connections in this one.
    const int self_ns = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int their_ns = ::open(("/var/run/netns/" + ns_name).c_str(), O_RDONLY | O_CLOEXEC);
    if (self_ns < 0 || their_ns < 0 || ::setns(their_ns, CLONE_NEWNET) != 0) unavailable("cannot enter the namespace");
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(3306);
    ::inet_pton(AF_INET, ns_addr.c_str(), &a.sin_addr);
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool listening = listener >= 0 && ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                           ::listen(listener, 64) == 0;
    if (::setns(self_ns, CLONE_NEWNET) != 0 || !listening) unavailable("cannot listen inside the namespace");

    const std::string target_host = argv[1], target_port = argv[2];
    std::thread([&] {
        for (;;) {
            const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                return;
            }
            const int server = upstream(target_host.c_str(), target_port.c_str());
            if (server < 0) {
                ::close(client);
                continue;
            }
            ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            std::thread(pump, client, server).detach();
            std::thread(pump, server, client).detach();
        }
    }).detach();

    std::printf("READY %s 3306\n", ns_addr.c_str());
    std::fflush(stdout);
    for (;;) {
        int sig = 0;
        if (::sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGUSR1 || sig == SIGUSR2) {
            const bool down = sig == SIGUSR1;
            const bool ok = run(in_ns + "ip link set " + ns_dev + (down ? " down" : " up"));
            std::printf("%s\n", ok ? (down ? "DOWN" : "UP") : "FAILED");
            std::fflush(stdout);
            continue;
        }
        run("ip netns del " + ns_name);  // (the veth pair goes with it)
        std::_Exit(0);
    }
}
