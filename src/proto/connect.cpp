// Connecting: the greeting, TLS (never after plaintext the server had no business
// sending), the handshake response and every authentication plugin's exchange.
#include "proto/session.hpp"

#include "proto/auth.hpp"
#include "proto/session_detail.hpp"

namespace ambisql::proto {

namespace {
constexpr std::string_view native_plugin = "mysql_native_password";
constexpr std::string_view sha2_plugin = "caching_sha2_password";
constexpr std::string_view ed25519_plugin = "client_ed25519";
constexpr std::string_view clear_plugin = "mysql_clear_password";
}  // namespace

bool session::start_connect(const config& cfg, std::string_view host, bool secure_transport) {
    if (op_ != op::none) return false;
    reset_wire();
    reader_.set_max_packet(cfg.max_packet_size);
    eof_ = false;
    seq_ = 0;
    broken_ = false;
    connected_ = false;
    status_ = 0;
    status_known_ = true;
    state_changed_ = false;
    caps_ = 0;
    switched_ = false;
    sha2_key_requested_ = false;
    stream_ = stream_state::idle;
    forget_statements();
    cache_capacity_ = cfg.statement_cache_size;
    cfg_ = &cfg;
    galera_ = cfg.galera_check;  // (cfg_ is the connect's only: the caller's config may go)
    host_.assign(host);
    secure_transport_ = secure_transport;
    set_charset(cfg.charset);
    handshake_charset_ = cfg.charset;
    pending_charset_.clear();
    charset_tracked_ = track_pending_ = false;
    schema_ = cfg.database;
    start_op(op::connect, st::greeting);
    if (cfg.max_packet_size > max_packet_limit) {
        // Row fields are addressed with 32-bit offsets into buffers a packet must fit in.
        fail(error_kind::client, errc::bad_config,
             "max_packet_size " + std::to_string(cfg.max_packet_size) + " is over the protocol's limit of 1 GiB",
             false);
        return false;
    }
    if (collation_for_charset(cfg.charset) == 0) {
        fail(error_kind::client, errc::bad_config, "unknown character set '" + cfg.charset + "'", false);
        return false;
    }
    attrs_.clear();
    attrs_.emplace_back("_client_name", "ambisql");
    attrs_.emplace_back("_client_version", "0.1.0");
    for (const auto& a : cfg.connect_attributes) attrs_.push_back(a);
    return true;
}

bool session::auth_response(std::string_view plugin, std::string_view data, std::string& out, errc& err,
                            std::string& why) {
    const std::string& pw = cfg_->password;
    if ((plugin == native_plugin || plugin == sha2_plugin) && data.size() < 20) {
        // Both scramble a 20-byte nonce; fewer bytes are a broken or hostile server.
        err = errc::protocol_error;
        why = std::string(plugin) + ": the server's scramble has " + std::to_string(data.size()) +
              " bytes, 20 are required";
        return false;
    }
    if (plugin == native_plugin) {
        out = native_password_response(pw, data);
    } else if (plugin == sha2_plugin) {
        out = caching_sha2_response(pw, data);
    } else if (plugin == ed25519_plugin) {
        if (data.size() < 32) {
            err = errc::protocol_error;
            why = "client_ed25519: short scramble";
            return false;
        }
        out = ed25519_response(pw, data.substr(0, 32));
        if (out.empty()) {
            err = errc::auth_plugin_unsupported;
            why = "client_ed25519: signing failed";
            return false;
        }
    } else if (plugin == clear_plugin) {
        if (!tls_on_ && !secure_transport_) {
            err = errc::auth_insecure_cleartext;
            why = "the server asked for the cleartext password over an unencrypted connection; refused";
            return false;
        }
        out = pw;
        out.push_back('\0');
    } else {
        err = errc::auth_plugin_unsupported;
        why = "unsupported authentication plugin '" + std::string(plugin) + "'";
        return false;
    }
    return true;
}

next_action session::send_handshake_response() {
    plugin_ = hs_.auth_plugin.empty() ? std::string(native_plugin) : hs_.auth_plugin;
    auth_data_ = hs_.scramble;
    std::string resp;
    errc e{};
    std::string why;
    if (!auth_response(plugin_, auth_data_, resp, e, why)) {
        if (e == errc::protocol_error) return fail(error_kind::protocol, e, std::move(why), false);
        // Unknown (or insecure) default plugin: answer as native; the server switches to
        // the account's plugin if it differs.
        plugin_ = native_plugin;
        if (!auth_response(plugin_, auth_data_, resp, e, why)) return fail(error_kind::protocol, e, std::move(why), false);
    }
    client_hello h;
    h.capabilities = caps_;
    h.max_packet = 0x40000000;
    h.collation = collation_for_charset(cfg_->charset);
    h.user = cfg_->user;
    h.auth_response = resp;
    h.database = cfg_->database;
    h.auth_plugin = plugin_;
    h.attributes = &attrs_;
    std::size_t s = begin_packet(out_);
    write_handshake_response(out_, h);
    end_packet(out_, s, seq_);
    st_ = st::auth_reply;
    return next_action::write;
}

next_action session::step_connect() {
    for (;;) {
        byte_span p;
        switch (st_) {
            case st::greeting: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (!p.empty() && p[0] == 0xFF) return fail_server(p, error_kind::server);
                if (!parse_handshake(p, hs_))
                    return fail(error_kind::protocol, errc::protocol_error, "malformed server greeting", false);
                if (!(hs_.capabilities & cap::protocol_41))
                    return fail(error_kind::protocol, errc::unsupported_server,
                                "the server does not speak protocol 4.1", false);
                std::uint64_t want = cap::long_password | cap::long_flag | cap::protocol_41 | cap::transactions |
                                     cap::secure_connection | cap::multi_results | cap::ps_multi_results |
                                     cap::plugin_auth | cap::plugin_auth_lenenc | cap::connect_attrs;
                if (cfg_->multi_statements) want |= cap::multi_statements;
                if (cfg_->found_rows) want |= cap::found_rows;
                if (cfg_->deprecate_eof) want |= cap::deprecate_eof;
                if (infile_source_) want |= cap::local_files;
                if (cfg_->compress) want |= cap::compress;
                want |= cap::mariadb_stmt_bulk;  // MariaDB only (extended capabilities)
                want |= cap::mariadb_cache_metadata;  // executes skip unchanged column definitions
                want |= cap::session_track;      // character set and schema changes
                if (!cfg_->database.empty()) want |= cap::connect_with_db;
                caps_ = want & hs_.capabilities;
                const ssl_mode m = cfg_->ssl;
                bool use_tls = m != ssl_mode::disabled && !(secure_transport_ && m == ssl_mode::preferred);
                if (use_tls && !(hs_.capabilities & cap::ssl)) {
                    if (m != ssl_mode::preferred)
                        return fail(error_kind::tls, errc::tls_not_offered,
                                    std::string("ssl-mode ") + to_string(m) +
                                        ": the server does not offer TLS; refusing to continue in plaintext",
                                    false);
                    use_tls = false;
                }
                if (!use_tls) {
                    if (send_handshake_response() == next_action::done) return next_action::done;
                    continue;
                }
                caps_ |= cap::ssl;
                client_hello h;
                h.capabilities = caps_;
                h.max_packet = 0x40000000;
                h.collation = collation_for_charset(cfg_->charset);
                std::size_t s = begin_packet(out_);
                write_ssl_request(out_, h);
                end_packet(out_, s, seq_);
                st_ = st::tls_start;
                continue;
            }
            case st::tls_start: {
                // The SSL request goes out in plaintext; only then does TLS begin.
                if (output_pending()) return next_action::write;
                // Plaintext bytes that came after the greeting would be read later as if
                // they had come over TLS (a forged OK, say, from a man in the middle).
                if (reader_.buffered() > 0)
                    return fail(error_kind::protocol, errc::protocol_error,
                                "the server sent data after its greeting, before TLS began; refused (a man in the "
                                "middle may be injecting plaintext)",
                                false);
                std::string err;
                if (!tls_.start(*cfg_, host_, err)) return fail(error_kind::tls, errc::tls_failed, err, false);
                tls_on_ = true;
                st_ = st::tls_handshake;
                continue;
            }
            case st::tls_handshake: {
                std::string err;
                auto s = tls_.handshake(err);
                if (s == tls_channel::status::ok) {
                    if (send_handshake_response() == next_action::done) return next_action::done;
                    continue;
                }
                if (s == tls_channel::status::want_read) return wait_input();
                return fail(error_kind::tls, errc::tls_failed, std::move(err), false);
            }
            case st::auth_reply: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (p.empty())
                    return fail(error_kind::protocol, errc::protocol_error, "empty authentication reply", false);
                switch (p[0]) {
                    case 0x00: {
                        ok_info ok;
                        reset_session_state();
                        if (!read_ok(p, ok))
                            return fail(error_kind::protocol, errc::protocol_error, "malformed OK packet", false);
                        set_status(ok.status);
                        connected_ = true;
                        new_epoch();
                        if (caps_ & cap::compress) {  // everything after this OK goes in frames
                            zon_ = true;
                            zf_.set_level(cfg_->compression_level);
                            reader_.set_check_sequence(false);
                        }
                        if (caps_ & cap::session_track) {  // the character set's changes reported from here on
                            write_track_request();
                            st_ = st::track_reply;
                            continue;
                        }
                        return finish();
                    }
                    case 0xFF: return fail_server(p, error_kind::auth);
                    case 0xFE: {
                        if (p.size() == 1)
                            return fail(error_kind::auth, errc::auth_plugin_unsupported,
                                        "the server asked for the pre-4.1 password scheme; refused", false);
                        if (switched_)
                            return fail(error_kind::auth, errc::auth_switch_refused,
                                        "the server asked to switch authentication plugins twice; refused", false);
                        switched_ = true;
                        reader r(p.subspan(1));
                        std::string_view plugin = r.null_string();
                        std::string_view data = r.rest();
                        if (!r.ok())
                            return fail(error_kind::protocol, errc::protocol_error, "malformed auth switch request",
                                        false);
                        plugin_.assign(plugin);
                        auth_data_.assign(data);
                        std::string resp, why;
                        errc e{};
                        if (!auth_response(plugin_, auth_data_, resp, e, why))
                            return fail(e == errc::protocol_error ? error_kind::protocol : error_kind::auth, e,
                                        std::move(why), false);
                        send_packet(resp);
                        continue;
                    }
                    case 0x01: {
                        if (plugin_ != sha2_plugin)
                            return fail(error_kind::protocol, errc::protocol_error,
                                        "unexpected authentication data for plugin " + plugin_, false);
                        if (!sha2_key_requested_ && p.size() == 2 && p[1] == 3) continue;  // fast auth: OK follows
                        if (!sha2_key_requested_ && p.size() == 2 && p[1] == 4) {          // full auth
                            if (tls_on_ || secure_transport_) {
                                std::string pw = cfg_->password;
                                pw.push_back('\0');
                                send_packet(pw);
                            } else if (!cfg_->server_rsa_public_key.empty()) {
                                std::string enc = caching_sha2_rsa_response(cfg_->password, auth_data_,
                                                                            cfg_->server_rsa_public_key);
                                if (enc.empty())
                                    return fail(error_kind::auth, errc::auth_plugin_unsupported,
                                                "caching_sha2_password: RSA encryption failed", false);
                                send_packet(enc);
                            } else if (cfg_->get_server_public_key) {
                                sha2_key_requested_ = true;
                                send_packet(std::string_view("\x02", 1));
                            } else {
                                // A key fetched over an unencrypted, unauthenticated link may be
                                // an attacker's: asking for it is the user's explicit choice.
                                return fail(error_kind::auth, errc::auth_insecure_cleartext,
                                            "caching_sha2_password needs full authentication, which without TLS "
                                            "needs the server's RSA public key: set server_rsa_public_key, or "
                                            "get_server_public_key (get-server-public-key=1) to fetch it unverified, "
                                            "or use TLS",
                                            false);
                            }
                            continue;
                        }
                        if (sha2_key_requested_) {
                            auto pem = std::string_view(reinterpret_cast<const char*>(p.data()) + 1, p.size() - 1);
                            std::string enc = caching_sha2_rsa_response(cfg_->password, auth_data_, pem);
                            if (enc.empty())
                                return fail(error_kind::auth, errc::auth_plugin_unsupported,
                                            "caching_sha2_password: bad server public key", false);
                            sha2_key_requested_ = false;
                            send_packet(enc);
                            continue;
                        }
                        return fail(error_kind::protocol, errc::protocol_error,
                                    "malformed caching_sha2_password message", false);
                    }
                    default:
                        return fail(error_kind::protocol, errc::protocol_error, "unexpected authentication reply",
                                    false);
                }
            }
            case st::track_reply: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                read_track_reply(p);
                return finish();
            }
            default: return fail(error_kind::protocol, errc::protocol_error, "bad connect state", false);
        }
    }
}

}  // namespace ambisql::proto
