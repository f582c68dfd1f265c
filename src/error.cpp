#include "ambisql/error.hpp"

namespace ambisql {

const char* to_string(error_kind k) noexcept {
    switch (k) {
        case error_kind::none: return "no";
        case error_kind::server: return "server";
        case error_kind::client: return "client";
        case error_kind::protocol: return "protocol";
        case error_kind::network: return "network";
        case error_kind::tls: return "tls";
        case error_kind::auth: return "auth";
    }
    return "unknown";
}

namespace {

class client_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "ambisql"; }
    std::string message(int v) const override {
        switch (static_cast<errc>(v)) {
            case errc::operation_in_progress: return "operation in progress";
            case errc::not_connected: return "not connected";
            case errc::connection_broken: return "connection is broken";
            case errc::protocol_error: return "protocol error";
            case errc::sequence_mismatch: return "packet sequence mismatch";
            case errc::packet_too_large: return "packet too large";
            case errc::unsupported_server: return "unsupported server";
            case errc::auth_plugin_unsupported: return "unsupported authentication plugin";
            case errc::auth_switch_refused: return "authentication switch refused";
            case errc::auth_insecure_cleartext: return "cleartext password refused on an insecure transport";
            case errc::tls_not_offered: return "TLS required but the server does not offer it";
            case errc::tls_failed: return "TLS failure";
            case errc::connect_failed: return "connect failed";
            case errc::host_not_found: return "host not found";
            case errc::timeout: return "timed out";
            case errc::connection_closed: return "connection closed by the server";
            case errc::io_error: return "I/O error";
            case errc::bad_url: return "malformed connection URL";
            case errc::bad_config: return "invalid configuration";
            case errc::option_file_unreadable: return "cannot read the option file";
            case errc::placeholder_mismatch: return "placeholder count does not match the arguments";
            case errc::charset_unknown:
                return "the character set in force is not known (changed where the server does not report it): "
                       "parameters are not interpolated; set it through the driver, or reset or reconnect";
            case errc::bad_text: return "text is not valid in the connection's character set";
            case errc::bad_value: return "value cannot be interpolated";
            case errc::value_type_mismatch: return "value has another type";
            case errc::value_out_of_range: return "value out of range";
            case errc::local_infile_refused: return "LOCAL INFILE request refused";
            case errc::wait_failed: return "wait hook failed";
            case errc::result_pending: return "a result is still being read";
            case errc::cancelled: return "the operation was cancelled";
            case errc::stale_handle:
                return "the statement or stream belongs to another connection, or to an earlier session of this one";
        }
        return "unknown ambisql error";
    }
};

class server_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "mysql.server"; }
    std::string message(int v) const override { return "server error " + std::to_string(v); }
};

}  // namespace

const std::error_category& client_category() noexcept {
    static const client_category_impl c;
    return c;
}
const std::error_category& server_category() noexcept {
    static const server_category_impl c;
    return c;
}
std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), client_category()}; }

std::string diagnostics::to_string() const {
    std::string s = ambisql::to_string(kind);
    s += " error";
    if (server_code != 0) {
        s += " ";
        s += std::to_string(server_code);
    }
    if (!sqlstate.empty()) {
        s += " (";
        s += sqlstate;
        s += ")";
    }
    s += ": ";
    s += message.empty() ? code.message() : message;
    return s;
}

error::error(diagnostics d) : std::runtime_error(d.to_string()), diag_(std::move(d)) {}

}  // namespace ambisql
