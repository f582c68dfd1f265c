// connect()'s options, each checked for its type and range (see options.hpp).
#include "options.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>

#include "errors.hpp"

namespace py = pybind11;

namespace ambisql::pybinding {

namespace {
// connect()'s options, each checked for its type and range: a clear ProgrammingError
// naming the option (as for an unknown ssl_mode), never pybind11's cast error or a
// float-to-integer conversion out of range.
[[noreturn]] void bad_option(const char* key, const char* what) {
    raise_mapped({0, std::string("connect(): ") + key + " " + what, "programming"});
}
bool has(const py::dict& o, const char* key) { return o.contains(key) && !o[key].is_none(); }
template <class T>
T option(const py::dict& o, const char* key, const char* what) {
    try {
        return o[key].cast<T>();
    } catch (const py::cast_error&) {
        bad_option(key, what);
    }
}
std::string text_option(const py::dict& o, const char* key) { return option<std::string>(o, key, "must be a str"); }
std::chrono::milliseconds ms_of(const py::dict& o, const char* key, std::chrono::milliseconds def) {
    if (!has(o, key)) return def;
    const double s = option<double>(o, key, "must be a number of seconds");
    if (!(s >= 0 && s <= 1e9)) bad_option(key, "must be a number of seconds from 0 to 1e9");  // (NaN too)
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

}  // namespace

bool flag_option(const py::dict& o, const char* key) { return option<bool>(o, key, "must be True or False"); }

config config_of(const py::dict& o) {
    // The Python API's defaults where they differ from the C++ API's: multi-statements
    // off, as MySQLdb and PyMySQL have them (client_flag asks for them). Then the URL,
    // then keyword arguments: each later one wins where it says something.
    config c;
    c.multi_statements = false;
    if (has(o, "url")) c = config::from_url(text_option(o, "url"), std::move(c));
    auto str = [&](const char* key, std::string& out) {
        if (has(o, key)) out = text_option(o, key);
    };
    str("host", c.host);
    str("user", c.user);
    str("password", c.password);
    str("database", c.database);
    str("unix_socket", c.unix_socket);
    str("charset", c.charset);
    str("ssl_ca", c.ssl_ca);
    str("ssl_capath", c.ssl_capath);
    str("ssl_ca_pem", c.ssl_ca_pem);
    str("ssl_cert", c.ssl_cert);
    str("ssl_key", c.ssl_key);
    str("bind_address", c.bind_address);
    if (has(o, "port")) {
        const long long port = option<long long>(o, "port", "must be an int");
        if (port < 0 || port > 65535) bad_option("port", "must be from 0 to 65535");
        c.port = static_cast<std::uint16_t>(port);
    }
    if (has(o, "ssl_mode")) {
        // Parsed the one way the URL is. Never weaker than the URL asked: the stronger of
        // the two, and "disabled" only where the URL does not require TLS.
        const ssl_mode m = config::from_url("mysql://x@h/?ssl-mode=" + text_option(o, "ssl_mode")).ssl;
        if (m == ssl_mode::disabled && c.ssl >= ssl_mode::required)
            bad_option("ssl_mode", "disabled conflicts with the URL's ssl-mode, which requires TLS");
        c.ssl = m == ssl_mode::disabled ? m : std::max(c.ssl, m);
    }
    if (has(o, "tls_min_version")) {
        const int v = option<int>(o, "tls_min_version", "must be 0x0303 or 0x0304");
        if (v != 0x0303 && v != 0x0304) bad_option("tls_min_version", "must be 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3)");
        c.tls_min_version = static_cast<std::uint16_t>(v);
    }
    c.connect_timeout = ms_of(o, "connect_timeout", c.connect_timeout);
    c.read_timeout = ms_of(o, "read_timeout", c.read_timeout);
    c.write_timeout = ms_of(o, "write_timeout", c.write_timeout);
    c.cancel_timeout = ms_of(o, "cancel_timeout", c.cancel_timeout);
    if (o.contains("found_rows")) c.found_rows = flag_option(o, "found_rows");
    if (o.contains("multi_statements")) c.multi_statements = flag_option(o, "multi_statements");
    if (o.contains("compress")) c.compress = flag_option(o, "compress");
    if (o.contains("get_server_public_key")) c.get_server_public_key = flag_option(o, "get_server_public_key");
    if (o.contains("local_infile_allow"))
        c.local_infile_allow = option<std::vector<std::string>>(o, "local_infile_allow", "must be a list of str");
    // Several hosts ("h1:3306,h2,h3:3307") and the Galera settings, read the one way the URL is.
    if (has(o, "hosts")) {
        config h = config::from_url("mysql://x@" + text_option(o, "hosts") + "/");
        if (h.hosts.empty()) {
            c.host = h.host;
            c.port = h.port;
        } else {
            c.hosts = h.hosts;
        }
    }
    if (has(o, "host_mode"))
        c.hosts_mode = config::from_url("mysql://x@h/?host-mode=" + text_option(o, "host_mode")).hosts_mode;
    if (o.contains("galera_check")) c.galera_check = flag_option(o, "galera_check");
    if (has(o, "wsrep_sync_wait"))
        c.wsrep_sync_wait = config::from_url("mysql://x@h/?wsrep-sync-wait=" +
                                             std::to_string(option<int>(o, "wsrep_sync_wait", "must be an int")))
                                .wsrep_sync_wait;
    c.host_backoff = ms_of(o, "host_backoff", c.host_backoff);
    c.connect_attributes.emplace_back("_client_language", "python");
    return c;
}

}  // namespace ambisql::pybinding
