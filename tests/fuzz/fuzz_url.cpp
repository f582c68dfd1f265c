// config::from_url and pool_config::from_url on arbitrary text: a config or ambisql::error (bad_url), nothing else;
// what it accepts is within bounds (ports, host lists, the Galera settings).
#include <cstdlib>
#include <string_view>

#include "ambisql/config.hpp"
#include "ambisql/error.hpp"
#include "ambisql/pool.hpp"

using namespace ambisql;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    for (std::string_view prefix : {"", "mysql://", "mysql://u:p@"}) {
        std::string url(prefix);
        url.append(text);
        try {
            config c = config::from_url(url);
            if (c.wsrep_sync_wait < -1 || c.wsrep_sync_wait > 15) std::abort();
            for (const host_port& h : c.hosts)
                if (h.port == 0) std::abort();
            if (!c.hosts.empty() && (c.host != c.hosts.front().host || c.port != c.hosts.front().port)) std::abort();
        } catch (const error& e) {
            if (e.code() != make_error_code(errc::bad_url)) std::abort();
        }
        try {  // the pool's own parameters, the rest as above
            pool_config pc = pool_config::from_url(url);
            if (pc.limits.max_size == 0 || pc.limits.min_size > pc.limits.max_size) std::abort();
        } catch (const error& e) {
            if (e.code() != make_error_code(errc::bad_url)) std::abort();
        }
    }
    return 0;
}
