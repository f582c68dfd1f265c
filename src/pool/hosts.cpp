// host_plan: see hosts.hpp.
#include "ambisql/detail/host_plan.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>

namespace ambisql::detail {

namespace {

// The process-wide deny list: host:port -> until when it is passed over, and the back-off
// that will follow its next failure.
struct deny_entry {
    clock::time_point until{};
    std::chrono::milliseconds backoff{0};
};
std::mutex deny_mutex;
std::map<std::string, deny_entry>& deny_list() {
    static std::map<std::string, deny_entry> m;
    return m;
}
std::string key_of(const host_port& h) { return h.host + ":" + std::to_string(h.port); }

constexpr std::chrono::milliseconds max_backoff{30000};
constexpr std::chrono::milliseconds not_synced_pause{1000};

}  // namespace

bool host_plan::needed(const config& cfg) noexcept {
    return !cfg.hosts.empty() || cfg.galera_check || cfg.wsrep_sync_wait >= 0;
}

host_plan::host_plan(const config& cfg) : base_(cfg) {
    base_.hosts.clear();
    if (cfg.hosts.empty()) {
        order_.push_back({cfg.host, cfg.port});
        single_ = true;
    } else {
        order_ = cfg.hosts;
        if (cfg.hosts_mode == host_mode::load_balance) {
            thread_local std::mt19937_64 rng(std::random_device{}());
            std::shuffle(order_.begin(), order_.end(), rng);
        }
        // hosts on the deny list go last, the soonest back first
        const auto now = clock::now();
        std::lock_guard lk(deny_mutex);
        auto denied_until = [&](const host_port& h) {
            auto it = deny_list().find(key_of(h));
            return it == deny_list().end() || it->second.until <= now ? clock::time_point{} : it->second.until;
        };
        std::stable_sort(order_.begin(), order_.end(),
                         [&](const host_port& a, const host_port& b) { return denied_until(a) < denied_until(b); });
    }
    deadline_ = cfg.connect_timeout.count() > 0 ? clock::now() + cfg.connect_timeout : clock::time_point::max();
    if (cfg.wsrep_sync_wait >= 0) setup_ = "SET SESSION wsrep_sync_wait = " + std::to_string(cfg.wsrep_sync_wait);
}

bool host_plan::next(config& out) {
    const auto now = clock::now();
    if (at_ >= order_.size() || now >= deadline_) return false;
    out = base_;
    out.host = order_[at_].host;
    out.port = order_[at_].port;
    if (deadline_ != clock::time_point::max()) {
        // an even share of what remains, but at least a second (or all of it)
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
        const auto share = left / static_cast<long>(order_.size() - at_);
        out.connect_timeout = std::max(share, std::min(left, std::chrono::milliseconds(1000)));
        if (out.connect_timeout.count() <= 0) out.connect_timeout = std::chrono::milliseconds(1);
    }
    ++at_;
    return true;
}

void host_plan::failed(const diagnostics& d) {
    const host_port& h = order_[at_ - 1];
    tried_ += (tried_.empty() ? "" : "; ") + key_of(h) + ": " + d.message;
    if (single_) return;
    std::lock_guard lk(deny_mutex);
    deny_entry& e = deny_list()[key_of(h)];
    e.backoff = e.backoff.count() == 0 ? base_.host_backoff : std::min(e.backoff * 2, max_backoff);
    e.until = clock::now() + e.backoff;
}

void host_plan::not_synced(const results& status) {
    const host_port& h = order_[at_ - 1];
    // No wsrep_local_state: no Galera provider loaded (a plain server, whose wsrep_ready is
    // OFF all the same): galera_check against a server that is not a Galera node.
    bool galera = false;
    for (std::size_t i = 0; status.size() > 0 && i < status.row_count(); ++i)
        galera = galera || status.row(i)[0].get_text() == "wsrep_local_state";
    tried_ += (tried_.empty() ? "" : "; ") + key_of(h) +
              (galera ? ": the Galera node is not synced"
                      : ": the server is not a Galera node (no wsrep status), and galera_check asks for one");
    if (single_) return;
    std::lock_guard lk(deny_mutex);
    deny_entry& e = deny_list()[key_of(h)];
    e.until = std::max(e.until, clock::now() + not_synced_pause);
}

void host_plan::succeeded() {
    if (single_) return;
    std::lock_guard lk(deny_mutex);
    deny_list().erase(key_of(order_[at_ - 1]));
}

const char* host_plan::galera_query() const noexcept {
    return base_.galera_check ? galera_status_sql : nullptr;
}

bool host_plan::galera_ok(const results& r) {
    bool state = false, ready = false;
    if (r.size() == 0) return false;
    for (std::size_t i = 0; i < r.row_count(); ++i) {
        const auto name = r.row(i)[0].get_text();
        const auto value = r.row(i)[1].get_text();
        if (name == "wsrep_local_state") state = value == "4";
        if (name == "wsrep_ready") ready = value == "ON";
    }
    return state && ready;
}

diagnostics host_plan::exhausted(const diagnostics& last) const {
    if (single_ && last) return last;
    diagnostics d;
    d.kind = last.kind == error_kind::none ? error_kind::network : last.kind;
    d.code = make_error_code(errc::connect_failed);
    d.message = "no host accepted the connection (" + (tried_.empty() ? std::string("none tried in time") : tried_) + ")";
    d.connection_usable = false;
    d.sent = last.sent;
    d.sent.known = true;  // a connect: nothing of the work went out
    d.sent.statements = d.sent.in_transaction = d.sent.commit = false;
    return d;
}

}  // namespace ambisql::detail
