#include <cctype>
#include <charconv>
#include <cmath>

#include "ambisql/config.hpp"
#include "ambisql/error.hpp"

namespace ambisql {

const char* to_string(ssl_mode m) noexcept {
    switch (m) {
        case ssl_mode::disabled: return "disabled";
        case ssl_mode::preferred: return "preferred";
        case ssl_mode::required: return "required";
        case ssl_mode::verify_ca: return "verify-ca";
        case ssl_mode::verify_identity: return "verify-identity";
    }
    return "?";
}

namespace {

[[noreturn]] void bad_url(const std::string& why) {
    diagnostics d;
    d.kind = error_kind::client;
    d.code = errc::bad_url;
    d.message = "connection URL: " + why;
    throw error(std::move(d));
}

std::string decode(std::string_view s, bool plus_is_space = false) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) bad_url("truncated percent escape");
            int v = 0;
            auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
            if (r.ec != std::errc() || r.ptr != s.data() + i + 3) bad_url("bad percent escape");
            out.push_back(static_cast<char>(v));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::chrono::milliseconds seconds(const std::string& key, const std::string& v) {
    double d = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), d);
    if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !std::isfinite(d) || d < 0 || d > 1e7)
        bad_url("bad value for " + key + ": '" + v + "'");
    return std::chrono::milliseconds(static_cast<long long>(std::llround(d * 1000)));
}

bool flag(const std::string& key, const std::string& v) {
    if (v == "1" || v == "true" || v == "on" || v == "yes") return true;
    if (v == "0" || v == "false" || v == "off" || v == "no") return false;
    bad_url("bad value for " + key + ": '" + v + "'");
}

}  // namespace

namespace {
// host[:port], [v6][:port], or a percent-encoded socket path (into c.unix_socket).
void parse_hostport(std::string_view hostport, host_port& hp, bool& socket, config& c) {
    std::string_view port;
    if (!hostport.empty() && hostport.front() == '[') {
        auto close = hostport.find(']');
        if (close == std::string_view::npos) bad_url("unclosed [ in host");
        hp.host = std::string(hostport.substr(1, close - 1));
        std::string_view rest = hostport.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') bad_url("junk after ]");
            port = rest.substr(1);
        }
    } else {
        auto colon = hostport.rfind(':');
        if (colon != std::string_view::npos) {
            port = hostport.substr(colon + 1);
            hostport = hostport.substr(0, colon);
        }
        std::string h = decode(hostport);
        if (!h.empty() && h.front() == '/') {
            c.unix_socket = h;
            hp.host = "localhost";
            socket = true;
        } else if (!h.empty()) {
            hp.host = h;
        }
    }
    if (!port.empty()) {
        unsigned v = 0;
        auto r = std::from_chars(port.data(), port.data() + port.size(), v);
        if (r.ec != std::errc() || r.ptr != port.data() + port.size() || v == 0 || v > 65535)
            bad_url("bad port '" + std::string(port) + "'");
        hp.port = static_cast<std::uint16_t>(v);
    }
    c.host = hp.host;
    if (!port.empty()) c.port = hp.port;
}
}  // namespace

config config::from_url(std::string_view url) { return from_url(url, config{}); }

config config::from_url(std::string_view url, config base) {
    config c = std::move(base);
    constexpr std::string_view schemes[] = {"mysql://", "mariadb://"};
    bool matched = false;
    for (auto s : schemes) {
        if (url.substr(0, s.size()) == s) {
            url.remove_prefix(s.size());
            matched = true;
            break;
        }
    }
    if (!matched) bad_url("must start with mysql:// or mariadb://");

    std::string_view query;
    if (auto q = url.find('?'); q != std::string_view::npos) {
        query = url.substr(q + 1);
        url = url.substr(0, q);
    }
    std::string_view path;
    if (auto slash = url.find('/'); slash != std::string_view::npos) {
        path = url.substr(slash + 1);
        url = url.substr(0, slash);
    }
    if (auto at = url.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = url.substr(0, at);
        url = url.substr(at + 1);
        if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
            c.user = decode(userinfo.substr(0, colon));
            c.password = decode(userinfo.substr(colon + 1));
        } else {
            c.user = decode(userinfo);
        }
    }
    // host[:port], [v6][:port], or a percent-encoded socket path; several, comma-separated
    std::vector<std::string_view> parts;
    for (std::string_view rest = url;;) {
        auto comma = rest.find(',');
        parts.push_back(rest.substr(0, comma));
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
    }
    for (std::string_view part : parts) {
        host_port hp{parts.size() > 1 ? std::string() : c.host, 3306};
        bool socket = false;
        parse_hostport(part, hp, socket, c);
        if (parts.size() > 1) {
            if (socket) bad_url("a unix socket cannot be one of several hosts");
            if (hp.host.empty()) bad_url("an empty host in the host list");
            c.hosts.push_back(hp);
        }
    }
    if (!c.hosts.empty()) {
        c.host = c.hosts.front().host;
        c.port = c.hosts.front().port;
    }
    c.database = decode(path);

    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (kv.empty()) continue;
        auto eq = kv.find('=');
        std::string key = decode(kv.substr(0, eq), true);
        std::string v = eq == std::string_view::npos ? std::string() : decode(kv.substr(eq + 1), true);
        for (char& ch : key)
            if (ch == '_') ch = '-';
        if (key == "ssl-mode" || key == "sslmode") {
            std::string m = v;
            for (char& ch : m) {
                if (ch == '_') ch = '-';
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            }
            if (m == "disabled" || m == "disable") c.ssl = ssl_mode::disabled;
            else if (m == "preferred" || m == "prefer") c.ssl = ssl_mode::preferred;
            else if (m == "required" || m == "require") c.ssl = ssl_mode::required;
            else if (m == "verify-ca") c.ssl = ssl_mode::verify_ca;
            else if (m == "verify-identity" || m == "verify-full") c.ssl = ssl_mode::verify_identity;
            else bad_url("unknown ssl-mode '" + v + "'");
        } else if (key == "ssl-ca") {
            c.ssl_ca = v;
        } else if (key == "ssl-capath") {
            c.ssl_capath = v;
        } else if (key == "tls-min-version" || key == "tls-version") {
            if (v == "1.2" || v == "TLSv1.2") c.tls_min_version = 0x0303;
            else if (v == "1.3" || v == "TLSv1.3") c.tls_min_version = 0x0304;
            else bad_url("tls-min-version must be 1.2 or 1.3, not '" + v + "'");
        } else if (key == "ssl-cert") {
            c.ssl_cert = v;
        } else if (key == "ssl-key") {
            c.ssl_key = v;
        } else if (key == "host-address" || key == "hostaddr") {
            c.host_address = v;
        } else if (key == "bind-address") {
            c.bind_address = v;
        } else if (key == "socket" || key == "unix-socket") {
            c.unix_socket = v;
        } else if (key == "charset") {
            c.charset = v;
        } else if (key == "connect-timeout") {
            c.connect_timeout = seconds(key, v);
        } else if (key == "read-timeout") {
            c.read_timeout = seconds(key, v);
        } else if (key == "write-timeout") {
            c.write_timeout = seconds(key, v);
        } else if (key == "cancel-timeout") {
            c.cancel_timeout = seconds(key, v);
        } else if (key == "multi-statements") {
            c.multi_statements = flag(key, v);
        } else if (key == "compress" || key == "compression") {
            c.compress = flag(key, v);
        } else if (key == "compression-level") {
            int n = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || end != v.data() + v.size() || n < 1 || n > 9) bad_url("bad compression-level");
            c.compression_level = n;
        } else if (key == "found-rows") {
            c.found_rows = flag(key, v);
        } else if (key == "get-server-public-key") {
            c.get_server_public_key = flag(key, v);
        } else if (key == "max-packet-size") {
            std::uint32_t n = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || end != v.data() + v.size() || v.empty()) bad_url("bad max-packet-size");
            c.max_packet_size = n;
        } else if (key == "deprecate-eof") {
            c.deprecate_eof = flag(key, v);
        } else if (key == "pipeline-spin-us" || key == "read-coalescing-us") {
            unsigned n = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || end != v.data() + v.size() || v.empty() || n > 1000000)
                bad_url("bad " + key);
            (key == "pipeline-spin-us" ? c.pipeline_spin : c.read_coalescing) = std::chrono::microseconds(n);
        } else if (key == "host-mode") {
            if (v == "sequential") c.hosts_mode = host_mode::sequential;
            else if (v == "load-balance" || v == "loadbalance" || v == "random") c.hosts_mode = host_mode::load_balance;
            else bad_url("unknown host-mode '" + v + "'");
        } else if (key == "host-backoff") {
            c.host_backoff = seconds(key, v);
        } else if (key == "galera-check") {
            c.galera_check = flag(key, v);
        } else if (key == "wsrep-sync-wait") {
            int n = -1;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || end != v.data() + v.size() || n < 0 || n > 15) bad_url("bad wsrep-sync-wait");
            c.wsrep_sync_wait = n;
        } else if (key == "statement-cache-size") {
            std::size_t n = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || end != v.data() + v.size() || v.empty()) bad_url("bad statement-cache-size");
            c.statement_cache_size = n;
        } else {
            bad_url("unknown parameter '" + key + "'");
        }
    }
    return c;
}

}  // namespace ambisql
