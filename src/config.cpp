#include <cctype>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

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
    if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !std::isfinite(d) || d < 0 || d > 1e9)
        bad_url("bad value for " + key + ": '" + v + "'");
    return std::chrono::milliseconds(static_cast<long long>(std::llround(d * 1000)));
}

bool flag(const std::string& key, const std::string& value) {
    std::string v = value;
    for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (v == "1" || v == "true" || v == "on" || v == "yes") return true;
    if (v == "0" || v == "false" || v == "off" || v == "no") return false;
    bad_url("bad value for " + key + ": '" + value + "'");
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

namespace {

[[noreturn]] void bad_setting(const std::string& why) {
    diagnostics d;
    d.kind = error_kind::client;
    d.code = errc::bad_config;
    d.message = why;
    throw error(std::move(d));
}

std::string lower_dashed(std::string_view v) {
    std::string m(v);
    for (char& ch : m) {
        if (ch == '_') ch = '-';
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    return m;
}

// "h1:3306,h2,[v6]:3307", or one host[:port], or a percent-encoded socket path.
void set_hosts(config& c, std::string_view list) {
    std::vector<std::string_view> parts;
    for (std::string_view rest = list;;) {
        auto comma = rest.find(',');
        parts.push_back(rest.substr(0, comma));
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
    }
    c.hosts.clear();
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
}

template <class N>
N number(const std::string& key, const std::string& v, N lo, N hi) {
    N n{};
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || v.empty() || n < lo || n > hi)
        bad_url("bad value for " + key + ": '" + v + "'");
    return n;
}

// The TLS mode a setting asks for (the names the mysql client and libpq use).
ssl_mode mode_named(const std::string& v) {
    const std::string m = lower_dashed(v);
    if (m == "disabled" || m == "disable") return ssl_mode::disabled;
    if (m == "preferred" || m == "prefer") return ssl_mode::preferred;
    if (m == "required" || m == "require") return ssl_mode::required;
    if (m == "verify-ca") return ssl_mode::verify_ca;
    if (m == "verify-identity" || m == "verify-full") return ssl_mode::verify_identity;
    bad_url("unknown ssl-mode '" + v + "'");
}

// One setting (key already lower-case with '-'); ssl-mode is the builder's to combine
// (`mode` receives it). Failures are bad_url errors, which set() re-labels.
void apply_setting(config& c, const std::string& key, const std::string& v, ssl_mode* mode) {
    if (key == "ssl-mode" || key == "sslmode") {
        *mode = mode_named(v);
    } else if (key == "host") {  // a name or an address as it is (an IPv6 one has colons)
        c.host = v;
        c.hosts.clear();
    } else if (key == "hosts") {
        set_hosts(c, v);
    } else if (key == "port") {
        c.port = number<std::uint16_t>(key, v, 1, 65535);
    } else if (key == "user") {
        c.user = v;
    } else if (key == "password") {
        c.password = v;
    } else if (key == "database") {
        c.database = v;
    } else if (key == "ssl-ca") {
        c.ssl_ca = v;
    } else if (key == "ssl-capath") {
        c.ssl_capath = v;
    } else if (key == "ssl-ca-pem") {
        c.ssl_ca_pem = v;
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
        c.compression_level = number<int>(key, v, 1, 9);
    } else if (key == "found-rows") {
        c.found_rows = flag(key, v);
    } else if (key == "get-server-public-key") {
        c.get_server_public_key = flag(key, v);
    } else if (key == "server-public-key-pem") {
        c.server_rsa_public_key = std::string(v);
    } else if (key == "program-name") {  // the connection attribute monitoring shows
        auto& attrs = c.connect_attributes;
        std::erase_if(attrs, [](const auto& a) { return a.first == "program_name"; });
        attrs.emplace_back("program_name", std::string(v));
    } else if (key == "max-packet-size") {
        c.max_packet_size = number<std::uint32_t>(key, v, 0, UINT32_MAX);
    } else if (key == "deprecate-eof") {
        c.deprecate_eof = flag(key, v);
    } else if (key == "pipeline-spin-us" || key == "read-coalescing-us") {
        const unsigned n = number<unsigned>(key, v, 0, 1000000);
        (key == "pipeline-spin-us" ? c.pipeline_spin : c.read_coalescing) = std::chrono::microseconds(n);
    } else if (key == "host-mode") {
        const std::string m = lower_dashed(v);
        if (m == "sequential") c.hosts_mode = host_mode::sequential;
        else if (m == "load-balance" || m == "loadbalance" || m == "random") c.hosts_mode = host_mode::load_balance;
        else bad_url("unknown host-mode '" + v + "'");
    } else if (key == "host-backoff") {
        c.host_backoff = seconds(key, v);
    } else if (key == "galera-check") {
        c.galera_check = flag(key, v);
    } else if (key == "wsrep-sync-wait") {
        c.wsrep_sync_wait = number<int>(key, v, 0, 15);
    } else if (key == "keepalive" || key == "tcp-keepalive") {
        c.keepalive = flag(key, v);
    } else if (key == "keepalive-idle") {
        c.keepalive_idle = std::chrono::seconds(number<int>(key, v, 1, 32767));
    } else if (key == "keepalive-interval") {
        c.keepalive_interval = std::chrono::seconds(number<int>(key, v, 1, 32767));
    } else if (key == "keepalive-count") {
        c.keepalive_count = number<int>(key, v, 1, 127);
    } else if (key == "statement-cache-size") {
        c.statement_cache_size = number<std::size_t>(key, v, 0, SIZE_MAX);
    } else {
        bad_url("unknown parameter '" + key + "'");
    }
}

bool is_on(bool bare, const std::string& v) {
    const std::string m = lower_dashed(v);
    return bare || m.empty() || m == "1" || m == "true" || m == "on" || m == "yes";
}

}  // namespace

config config::from_url(std::string_view url) { return from_url(url, config{}); }

config config::from_url(std::string_view url, config base) { return config_builder(std::move(base)).url(url).build(); }

config_builder::config_builder(config base) : c_(std::move(base)) {}

config_builder& config_builder::url(std::string_view url) {
    config& c = c_;
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
    set_hosts(c, url);
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
        ask(key, v, "the URL");
    }
    return *this;
}

// A setting from a source; ssl-mode combined by the TLS rule.
void config_builder::ask(const std::string& key, const std::string& v, std::string_view source) {
    ssl_mode m = c_.ssl;
    apply_setting(c_, key, v, &m);
    if (key != "ssl-mode" && key != "sslmode") return;
    if (m == ssl_mode::disabled) {
        disabled_by_ = std::string(source);
    } else if (!tls_asked_ || m > strongest_) {
        tls_asked_ = true;
        strongest_ = m;
        strongest_by_ = std::string(source);
    }
}

config_builder& config_builder::set(std::string_view key, std::string_view value, std::string_view source) {
    const std::string k = lower_dashed(key);
    try {
        ask(k, std::string(value), source);
    } catch (const error& e) {
        bad_setting(std::string(source) + ": " + e.diag().message.substr(e.diag().message.find(": ") + 2));
    }
    return *this;
}

config_builder& config_builder::option_file(const std::string& path, std::string_view group) {
    std::ifstream in(path);
    if (!in) {
        diagnostics d;
        d.kind = error_kind::client;
        d.code = errc::option_file_unreadable;
        d.message = "cannot read the option file '" + path + "': " + std::strerror(errno);
        throw error(std::move(d));
    }
    const std::string source = "the option file's ";
    bool in_group = false;
    for (std::string line; std::getline(in, line);) {
        auto trim = [](std::string_view t) {
            while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
            while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
            return t;
        };
        std::string_view l = trim(line);
        if (l.empty() || l.front() == '#' || l.front() == ';' || l.front() == '!') continue;
        if (l.front() == '[') {
            const auto close = l.find(']');
            in_group = close != std::string_view::npos && trim(l.substr(1, close - 1)) == group;
            continue;
        }
        if (!in_group) continue;
        const auto eq = l.find('=');
        std::string key = lower_dashed(trim(l.substr(0, eq)));
        std::string_view v = eq == std::string_view::npos ? std::string_view{} : trim(l.substr(eq + 1));
        if (v.size() >= 2 && v.front() == v.back() && (v.front() == '"' || v.front() == '\'')) v = v.substr(1, v.size() - 2);
        const std::string value(v);
        const bool bare = eq == std::string_view::npos;
        if (key == "default-character-set") key = "charset";
        if (key == "ssl-cipher" || key == "tls-ciphersuites") {
            bad_setting(source + key + ": a cipher list is not carried over (the core keeps OpenSSL's default "
                                   "ciphers for TLS 1.2+); refused rather than ignored");
        } else if (key == "ssl-verify-server-cert") {
            if (is_on(bare, value)) set("ssl-mode", "verify-identity", source + key);
        } else if ((key == "skip-ssl" && is_on(bare, value)) || (key == "ssl" && !is_on(bare, value))) {
            set("ssl-mode", "disabled", source + key);
        } else if (key == "ssl-ca" || key == "ssl-capath") {
            set(key, value, source + key);
            set("ssl-mode", "verify-identity", source + key);
        } else if (key == "user" || key == "password" || key == "host" || key == "port" || key == "socket" ||
                   key == "database" || key == "charset" || key == "bind-address" || key == "connect-timeout" ||
                   key == "ssl-mode" || key == "ssl-cert" || key == "ssl-key") {
            set(key, value, source + key);
        }
    }
    return *this;
}

config config_builder::build() const {
    config c = c_;
    if (!disabled_by_.empty()) {
        if (tls_asked_ && strongest_ >= ssl_mode::required)
            bad_setting("ssl-mode disabled (" + disabled_by_ + ") conflicts with ssl-mode " + to_string(strongest_) +
                        " (" + strongest_by_ + "): TLS is never weaker than asked");
        c.ssl = ssl_mode::disabled;
    } else if (tls_asked_) {
        c.ssl = strongest_;
    }
    return c;
}

}  // namespace ambisql
