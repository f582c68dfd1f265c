// connect()'s options, each checked for its type and range (see options.hpp).
#include "options.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <tuple>

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

namespace {
// The keyword arguments connections.py passes (only those given), by the core's names.
enum class kind { text, port, seconds, flag, integer };
struct keyword {
    const char* name;     // connect()'s
    const char* setting;  // the core's (a URL's key)
    kind k;
};
constexpr keyword keywords[] = {
    {"host", "host", kind::text},
    {"port", "port", kind::port},
    {"hosts", "hosts", kind::text},  // after host: a list replaces it
    {"user", "user", kind::text},
    {"password", "password", kind::text},
    {"database", "database", kind::text},
    {"unix_socket", "socket", kind::text},
    {"charset", "charset", kind::text},
    {"bind_address", "bind-address", kind::text},
    {"connect_timeout", "connect-timeout", kind::seconds},
    {"read_timeout", "read-timeout", kind::seconds},
    {"write_timeout", "write-timeout", kind::seconds},
    {"cancel_timeout", "cancel-timeout", kind::seconds},
    {"found_rows", "found-rows", kind::flag},
    {"multi_statements", "multi-statements", kind::flag},
    {"compress", "compress", kind::flag},
    {"get_server_public_key", "get-server-public-key", kind::flag},
    {"server_public_key", "server-public-key-pem", kind::text},
    {"program_name", "program-name", kind::text},
    {"host_mode", "host-mode", kind::text},
    {"galera_check", "galera-check", kind::flag},
    {"wsrep_sync_wait", "wsrep-sync-wait", kind::integer},
    {"host_backoff", "host-backoff", kind::seconds},
    {"keepalive", "keepalive", kind::flag},
    {"keepalive_idle", "keepalive-idle", kind::integer},
    {"keepalive_interval", "keepalive-interval", kind::integer},
    {"keepalive_count", "keepalive-count", kind::integer},
};

std::string text_of(const py::dict& o, const keyword& k) {
    char buf[64];
    switch (k.k) {
        case kind::text: return text_option(o, k.name);
        case kind::flag:  // True / False, or a word the core reads ("on", "1", ...)
            if (PyUnicode_Check(o[k.name].ptr())) return text_option(o, k.name);
            return flag_option(o, k.name) ? "1" : "0";
        case kind::integer:
            if (PyUnicode_Check(o[k.name].ptr())) return text_option(o, k.name);
            return std::to_string(option<long long>(o, k.name, "must be an int"));
        case kind::port: {
            const long long port = option<long long>(o, k.name, "must be an int");
            if (port < 1 || port > 65535) bad_option(k.name, "must be from 0 to 65535");
            return std::to_string(port);
        }
        case kind::seconds: {
            const double s = option<double>(o, k.name, "must be a number of seconds");
            if (!(s >= 0 && s <= 1e9)) bad_option(k.name, "must be a number of seconds from 0 to 1e9");  // (NaN too)
            std::snprintf(buf, sizeof buf, "%.3f", s);
            return buf;
        }
    }
    return {};
}
}  // namespace

config config_of(const py::dict& o) {
    // The Python API's defaults where they differ from the C++ API's: the host named
    // localhost, multi-statements off, as MySQLdb and PyMySQL have them (client_flag asks
    // for them).
    config base;
    base.host = "localhost";
    base.multi_statements = false;
    base.connect_attributes.emplace_back("_client_language", "python");
    config_builder b(std::move(base));
    if (has(o, "option_file"))
        b.option_file(text_option(o, "option_file"), has(o, "option_group") ? text_option(o, "option_group") : "client");
    if (has(o, "url")) b.url(text_option(o, "url"));
    for (const keyword& k : keywords)
        if (has(o, k.name)) b.set(k.setting, text_of(o, k), std::string("keyword argument ") + k.name);
    if (has(o, "tls")) {  // (name, value, source) triples from ambisql/_tls.py
        for (py::handle t : o["tls"]) {
            const auto [name, value, source] = t.cast<std::tuple<std::string, std::string, std::string>>();
            b.set(name, value, source);
        }
    }
    if (o.contains("local_infile_allow"))
        b.settings().local_infile_allow =
            option<std::vector<std::string>>(o, "local_infile_allow", "must be a list of str");
    return b.build();
}

}  // namespace ambisql::pybinding
