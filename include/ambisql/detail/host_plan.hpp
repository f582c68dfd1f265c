#pragma once
// Connecting to one of several hosts: the order to try them in (sequential, or random for
// load balancing; hosts that failed lately last), one deadline for all of them, the
// process-wide deny list with back-off, and the Galera checks. No I/O: the blocking
// connection and the async pool drive it the same way:
//
//   host_plan plan(cfg);
//   config one;
//   while (plan.next(one)) {
//       connect with `one`, failure: plan.failed(diag) and go on;
//       if (plan.galera_query()) run it, !plan.galera_ok(result): plan.not_synced(result), close, go on;
//       if (!plan.session_setup().empty()) run it;
//       plan.succeeded(); done
//   }
//   plan.exhausted(last diag): the error to report
#include <string>
#include <vector>

#include "ambisql/config.hpp"
#include "ambisql/error.hpp"
#include "ambisql/resultset.hpp"
#include "ambisql/wait_hook.hpp"

namespace ambisql::detail {

class host_plan {
public:
    // Whether `cfg` needs a plan at all (several hosts, or Galera settings).
    static bool needed(const config& cfg) noexcept;

    explicit host_plan(const config& cfg);
    // The next host's settings (hosts cleared, connect_timeout its share of what remains);
    // false when every host was tried or the deadline passed.
    bool next(config& out);
    void failed(const diagnostics& d);  // the current host failed: passed over for a while
    void not_synced(const results& status);  // Galera: the current node is not ready (its galera_query() answer)
    void succeeded();                   // the current host works: off the deny list

    static constexpr const char* galera_status_sql =
        "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready')";
    // Galera: the status query to run on a new connection (nullptr: none), and its verdict.
    const char* galera_query() const noexcept;
    static bool galera_ok(const results& r);
    // SQL to run once connected ("" for none): SET SESSION wsrep_sync_wait = N.
    const std::string& session_setup() const noexcept { return setup_; }

    // The error when no host worked: errc::connect_failed naming every host tried and why
    // (the last failure's own diagnostics when there was a single host).
    diagnostics exhausted(const diagnostics& last) const;

private:
    config base_;
    std::vector<host_port> order_;
    std::size_t at_ = 0;  // the next to try
    clock::time_point deadline_;
    std::string tried_;
    std::string setup_;
    bool single_ = false;
};

}  // namespace ambisql::detail
