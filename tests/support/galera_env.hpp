#pragma once
// The Galera cluster of scripts/galera as `scripts/galera env` exports it, for the failover
// tests and the galera/failover benchmark alike.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace ambisql::galera {

struct cluster_env {
    std::vector<std::uint16_t> ports;  // each node's SQL port
    std::vector<std::string> hosts;    // each node's SQL address (node 3's namespace's, where it has one)
    std::string script;                // scripts/galera
    std::string no_partition;          // why node 3 cannot be partitioned here ("": it can)
    bool present() const { return !ports.empty() && !script.empty(); }

    static cluster_env from_environment() {
        cluster_env e;
        auto get = [](const char* name) {
            const char* v = std::getenv(name);
            return std::string(v ? v : "");
        };
        auto split = [](const std::string& s) {
            std::vector<std::string> out;
            std::stringstream in(s);
            for (std::string item; std::getline(in, item, ',');) out.push_back(item);
            return out;
        };
        for (const auto& p : split(get("AMBISQL_GALERA_PORTS"))) e.ports.push_back(static_cast<std::uint16_t>(std::stoi(p)));
        e.hosts = split(get("AMBISQL_GALERA_HOSTS"));
        e.hosts.resize(e.ports.size(), "127.0.0.1");
        e.script = get("AMBISQL_GALERA_SCRIPT");
        e.no_partition = std::getenv("AMBISQL_GALERA_NO_PARTITION")
                             ? get("AMBISQL_GALERA_NO_PARTITION")
                             : "scripts/galera env did not say (AMBISQL_GALERA_NO_PARTITION unset)";
        return e;
    }
};

}  // namespace ambisql::galera
