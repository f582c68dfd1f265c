#include "proto/session.hpp"

#include <cctype>

#include "proto/auth.hpp"
#include "proto/binary.hpp"
#include "proto/result_builder.hpp"

namespace ambisql::proto {

namespace {
constexpr std::size_t tls_scratch = 64 * 1024;
constexpr std::string_view native_plugin = "mysql_native_password";
constexpr std::string_view sha2_plugin = "caching_sha2_password";
constexpr std::string_view ed25519_plugin = "client_ed25519";
constexpr std::string_view clear_plugin = "mysql_clear_password";

constexpr const char* unbindable = "an identifier cannot be bound to a statement parameter";

std::string param_count_message(std::size_t params, std::size_t given) {
    return "the statement has " + std::to_string(params) + " parameters, " + std::to_string(given) + " values given";
}

// Server errors after which the server closes the connection.
bool closes_connection(std::uint16_t code) {
    return code == 1927 /* ER_CONNECTION_KILLED */ || code == 1053 /* ER_SERVER_SHUTDOWN */ ||
           code == 1152 /* ER_ABORTING_CONNECTION */ || code == 1184 /* ER_NEW_ABORTING_CONNECTION */ ||
           code == 4031 /* idle timeout */;
}
}  // namespace

// ---------------------------------------------------------------- driver side

std::span<std::uint8_t> session::read_buffer() {
    if (tls_on_) {
        if (net_in_.size() < tls_scratch) net_in_.resize(tls_scratch);
        return net_in_;
    }
    return zon_ ? zf_.space() : reader_.space();
}

bool session::bulk_rows() const noexcept {
    constexpr std::uint64_t bulk_after = 256 * 1024;
    constexpr std::size_t small_packet = 16 * 1024;
    return op_ != op::none && st_ == st::rows && rx_since_exchange_ >= bulk_after && reader_.missing() <= small_packet;
}

void session::on_read(std::size_t n) {
    rx_since_exchange_ += n;
    if (n == 0) {
        eof_ = true;
    } else if (tls_on_) {
        tls_.feed(net_in_.data(), n);
    } else if (zon_) {
        zf_.commit(n);
    } else {
        reader_.commit(n);
    }
}

// The bytes for the wire: the packets, compressed into frames, encrypted (each layer
// when on).
std::span<const std::uint8_t> session::write_buffer() {
    if (!tls_on_ && !zon_) return {out_.data() + out_pos_, out_.size() - out_pos_};
    prepare_output();
    if (tls_on_) return {net_out_.data() + net_out_pos_, net_out_.size() - net_out_pos_};
    return {zout_.data() + zout_pos_, zout_.size() - zout_pos_};
}

void session::on_written(std::size_t n) noexcept {
    auto& buf = tls_on_ ? net_out_ : zon_ ? zout_ : out_;
    auto& pos = tls_on_ ? net_out_pos_ : zon_ ? zout_pos_ : out_pos_;
    pos += n;
    if (pos >= buf.size()) {
        buf.clear();
        pos = 0;
    }
}

void session::on_io_error(error_kind kind, errc code, std::string message) {
    fail(kind, code, std::move(message), false);
}

bool session::prepare_output() {
    if (zon_ && out_pos_ < out_.size()) {
        out_pos_ += zf_.compress({out_.data() + out_pos_, out_.size() - out_pos_}, zout_);
        if (out_pos_ == out_.size()) {
            out_.clear();
            out_pos_ = 0;
        }
    }
    if (!tls_on_) return true;
    auto& plain = zon_ ? zout_ : out_;
    auto& plain_pos = zon_ ? zout_pos_ : out_pos_;
    if (plain_pos < plain.size()) {
        std::string err;
        if (!tls_.write(plain.data() + plain_pos, plain.size() - plain_pos, err)) {
            fail(error_kind::tls, errc::tls_failed, std::move(err), false);
            return false;
        }
        plain.clear();
        plain_pos = 0;
    }
    tls_.drain(net_out_);
    return true;
}

bool session::output_pending() {
    if (!tls_on_ && !zon_) return out_pos_ < out_.size();
    if (!prepare_output()) return false;
    if (tls_on_) return net_out_pos_ < net_out_.size();
    return zout_pos_ < zout_.size();
}

void session::new_exchange(std::uint8_t seq) noexcept {
    seq_ = seq;
    rx_since_exchange_ = 0;
    if (zon_) zf_.response_begins();
}

next_action session::wait_input() {
    if (output_pending()) return next_action::write;
    if (op_ == op::none) return next_action::done;
    if (eof_) return fail(error_kind::network, errc::connection_closed, "the server closed the connection", false);
    return next_action::read;
}

bool session::pull_tls(std::span<std::uint8_t> room, std::size_t& n) {
    std::string err;
    auto ts = tls_.read(room.data(), room.size(), n, err);
    if (ts == tls_channel::status::ok) return true;
    if (ts == tls_channel::status::closed)
        fail(error_kind::network, errc::connection_closed, "the server closed the TLS session", false);
    else if (ts == tls_channel::status::error)
        fail(error_kind::tls, errc::tls_failed, std::move(err), false);
    return false;
}

bool session::take(byte_span& p, bool fill) {
    for (;;) {
        errc e{};
        auto s = reader_.next(p, seq_, e);
        if (s == packet_reader::status::ok) return true;
        if (s == packet_reader::status::error) {
            fail(error_kind::protocol, e,
                 e == errc::sequence_mismatch ? "packet sequence mismatch: the stream is out of step"
                                              : "packet larger than max_packet_size",
                 false);
            return false;
        }
        if (!fill) return false;
        std::size_t n = 0;
        if (zon_) {
            std::string why;
            auto zs = zf_.next(reader_, why);
            if (zs == compressed_framing::status::ok) continue;
            if (zs == compressed_framing::status::error) {
                fail(error_kind::protocol, errc::protocol_error, std::move(why), false);
                return false;
            }
            if (!tls_on_) return false;
            auto room = zf_.space();
            if (!pull_tls(room, n)) return false;
            zf_.commit(n);
            continue;
        }
        if (!tls_on_) return false;
        if (!pull_tls(reader_.space(), n)) return false;
        reader_.commit(n);
    }
}

next_action session::resume() {
    switch (op_) {
        case op::none: return next_action::done;
        case op::connect: return step_connect();
        case op::query: return step_query();
        case op::simple:
        case op::quit: return step_simple();
        case op::prepare: return step_prepare();
        case op::pipeline: return step_pipeline();
        case op::bulk: return step_bulk();
    }
    return next_action::done;
}

// ---------------------------------------------------------------- common

next_action session::fail(error_kind kind, errc code, std::string message, bool usable) {
    diag_.kind = kind;
    diag_.code = code;
    diag_.server_code = 0;
    diag_.sqlstate.clear();
    diag_.message = std::move(message);
    diag_.connection_usable = usable;
    if (!usable) {
        broken_ = true;
        connected_ = false;
        stream_ = stream_state::idle;
        deferred_.clear();
    }
    op_ = op::none;
    infile_armed_ = false;
    return next_action::done;
}

next_action session::fail_server(byte_span payload, error_kind kind) {
    err_packet e;
    if (!parse_err(payload, e))
        return fail(error_kind::protocol, errc::protocol_error, "malformed ERR packet", false);
    bool fatal = kind == error_kind::auth || closes_connection(e.code) || op_ == op::connect;
    if (closes_connection(e.code)) kind = error_kind::network;
    fail(kind, errc::protocol_error, std::string(e.message), !fatal);
    diag_.code = std::error_code(e.code, server_category());
    diag_.server_code = e.code;
    diag_.sqlstate.assign(e.sqlstate);
    if (!fatal && stream_ != stream_state::idle) stream_ = stream_state::idle;
    if (!fatal && deferred_.kind != error_kind::none) diag_ = std::move(deferred_);  // the first failure counts
    deferred_.clear();
    return next_action::done;
}

next_action session::finish() noexcept {
    op_ = op::none;
    infile_armed_ = false;
    if (deferred_.kind != error_kind::none) {
        diag_ = std::move(deferred_);
        deferred_.clear();
    }
    return next_action::done;
}

bool session::can_start() {
    if (op_ != op::none) return false;  // the connection layer reports this
    diag_.clear();
    if (broken_) {
        fail(error_kind::client, errc::connection_broken, "the connection is broken; reconnect", false);
        return false;
    }
    if (!connected_) {
        fail(error_kind::client, errc::not_connected, "not connected", true);
        return false;
    }
    if (result_pending()) {
        fail(error_kind::client, errc::result_pending,
             "a streamed result is still being read; read or discard it first", true);
        return false;
    }
    write_pending_closes();
    return true;
}

// The server holds no statement of this connection any more (new connection, reset,
// close): the cache, the closes owed for it, and what each statement had, go.
void session::forget_statements() noexcept {
    cache_.clear();
    cache_index_.clear();
    pending_closes_.clear();
    stmt_info_.clear();
}

// Statements closed (evicted from the cache) go out ahead of the next command: the
// server does not answer COM_STMT_CLOSE.
void session::write_pending_closes() {
    for (std::uint32_t id : pending_closes_) {
        stmt_info_.erase(id);
        std::uint8_t seq = 0;
        std::size_t s = begin_packet(out_);
        writer w(out_);
        w.u8(command::stmt_close);
        w.u32(id);
        end_packet(out_, s, seq);
    }
    pending_closes_.clear();
}

void session::start_op(op o, st s) {
    diag_.clear();
    deferred_.clear();
    op_ = o;
    st_ = s;
    infile_armed_ = false;  // armed again by start_query for its own LOAD DATA LOCAL only
}

void session::begin_command(std::uint8_t cmd) {
    new_exchange(0);
    begin_packet(out_);
    out_.push_back(cmd);
}

next_action session::send_packet(std::string_view payload) {
    std::size_t s = begin_packet(out_);
    out_.insert(out_.end(), payload.begin(), payload.end());
    end_packet(out_, s, seq_);
    return next_action::write;
}

// ---------------------------------------------------------------- connect

bool session::start_connect(const config& cfg, std::string_view host, bool secure_transport) {
    if (op_ != op::none) return false;
    reset_wire();
    reader_.set_max_packet(cfg.max_packet_size);
    eof_ = false;
    seq_ = 0;
    broken_ = false;
    connected_ = false;
    status_ = 0;
    caps_ = 0;
    switched_ = false;
    sha2_key_requested_ = false;
    stream_ = stream_state::idle;
    forget_statements();
    cache_capacity_ = cfg.statement_cache_size;
    cfg_ = &cfg;
    host_.assign(host);
    secure_transport_ = secure_transport;
    unsafe_charset_ = is_unsafe_charset(cfg.charset);
    charset_unknown_ = false;
    charset_ = cfg.charset;
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
                        status_ = ok.status;
                        connected_ = true;
                        if (caps_ & cap::compress) {  // everything after this OK goes in frames
                            zon_ = true;
                            zf_.set_level(cfg_->compression_level);
                            reader_.set_check_sequence(false);
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
            default: return fail(error_kind::protocol, errc::protocol_error, "bad connect state", false);
        }
    }
}

// ---------------------------------------------------------------- query

namespace {
// The file name of a `LOAD DATA [LOW_PRIORITY | CONCURRENT] LOCAL INFILE 'name'`
// statement at the start of sql (after blanks); false when sql is no such statement.
bool load_data_local_file(std::string_view sql, std::string& file) {
    std::size_t i = 0;
    auto blanks = [&] {
        while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r')) ++i;
    };
    auto word = [&](std::string_view w) {
        blanks();
        if (sql.size() - i < w.size()) return false;
        for (std::size_t k = 0; k < w.size(); ++k)
            if (std::toupper(static_cast<unsigned char>(sql[i + k])) != w[k]) return false;
        if (i + w.size() < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i + w.size()])) || sql[i + w.size()] == '_'))
            return false;
        i += w.size();
        return true;
    };
    if (!word("LOAD") || !word("DATA")) return false;
    if (!word("LOW_PRIORITY")) (void)word("CONCURRENT");
    if (!word("LOCAL") || !word("INFILE")) return false;
    blanks();
    if (i >= sql.size() || (sql[i] != '\'' && sql[i] != '"')) return false;
    const char q = sql[i++];
    file.clear();
    while (i < sql.size()) {
        char c = sql[i++];
        if (c == '\\' && i < sql.size()) {
            char e = sql[i++];
            switch (e) {
                case 'n': file += '\n'; break;
                case 't': file += '\t'; break;
                case 'r': file += '\r'; break;
                case '0': file += '\0'; break;
                case 'Z': file += '\x1A'; break;
                default: file += e; break;
            }
        } else if (c == q) {
            if (i < sql.size() && sql[i] == q) {
                file += q;
                ++i;
            } else {
                return true;
            }
        } else {
            file += c;
        }
    }
    return false;  // unterminated
}
}  // namespace

bool session::start_query(std::string_view sql, results* out) {
    if (!can_start()) return false;
    start_op(op::query, st::first);
    begin_results(out, false);
    infile_armed_ = infile_source_ && load_data_local_file(sql, infile_expected_);
    note_untracked_changes(sql);
    infile_sent_ = false;
    std::size_t s = out_.size();
    begin_command(command::query);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, s, seq_);
    return true;
}

void session::begin_results(results* out, bool binary) {
    mode_ = out ? mode::buffered : mode::stream;
    out_results_ = out;
    if (out) out->clear();
    stream_ = stream_state::idle;
    batch_rows_ = 0;
    batch_fields_.clear();
    binary_rows_ = binary;
}

bool session::start_query(std::string_view sql, std::span<const sql_arg> args, results* out) {
    if (!can_start()) return false;
    sql_scratch_.clear();
    if (auto ec = format_sql(sql_scratch_, sql, args, escaping_rules())) {
        fail(error_kind::client, static_cast<errc>(ec.value()), ec.message(), true);
        return false;
    }
    return start_query(sql_scratch_, out);
}

// An OK ending one statement's response, kept as a resultset of its own. true: the
// operation ends here (`done` says how); false: more results follow.
bool session::statement_ok(byte_span p, next_action& done) {
    ok_info ok;
    if (!read_ok(p, ok)) {
        done = fail(error_kind::protocol, errc::protocol_error, "malformed OK packet", false);
        return true;
    }
    status_ = ok.status;
    if (mode_ == mode::buffered) {
        resultset::builder::set_ok(out_results_->add(), ok);
    } else if (mode_ == mode::stream) {
        resultset::builder::reset(stream_set_);
        resultset::builder::set_ok(stream_set_, ok);
        stream_ = stream_state::set_done;
        done = finish();
        return true;
    }
    if (status_ & server_status::more_results_exist) return false;
    stream_ = stream_state::idle;
    done = finish();
    return true;
}

bool session::start_read_rows() {
    if (op_ != op::none || stream_ != stream_state::rows) return false;
    start_op(op::query, st::rows);
    mode_ = mode::stream;
    batch_rows_ = 0;
    batch_fields_.clear();
    return true;
}

bool session::start_next_result() {
    if (op_ != op::none || stream_ != stream_state::set_done || !(status_ & server_status::more_results_exist))
        return false;
    start_op(op::query, st::first);
    mode_ = mode::stream;
    stream_ = stream_state::idle;
    batch_rows_ = 0;
    batch_fields_.clear();
    return true;
}

bool session::start_discard() {
    if (op_ != op::none) return false;
    batch_rows_ = 0;
    batch_fields_.clear();
    if (stream_ == stream_state::rows) {
        start_op(op::query, st::rows);
    } else if (stream_ == stream_state::set_done && (status_ & server_status::more_results_exist)) {
        start_op(op::query, st::first);
    } else {
        stream_ = stream_state::idle;
        return true;  // nothing left; resume() says done at once
    }
    mode_ = mode::discard;
    return true;
}

next_action session::step_query() {
    for (;;) {
        byte_span p;
        switch (st_) {
            case st::first: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
                const std::uint8_t h = p[0];
                if (h == 0x00) {
                    next_action done;
                    if (statement_ok(p, done)) return done;
                    continue;
                }
                if (h == 0xFF) {
                    if (auto it = binary_rows_ ? stmt_info_.find(exec_stmt_) : stmt_info_.end(); it != stmt_info_.end())
                        it->second.types.clear();  // what the server holds may differ now
                    return fail_server(p);
                }
                if (h == 0xFB) {
                    // LOCAL INFILE request: honoured once, for the file our statement named;
                    // otherwise answered with an empty file and reported as refused.
                    std::string_view name(reinterpret_cast<const char*>(p.data() + 1), p.size() - 1);
                    std::string why = "the server asked for a LOCAL INFILE file, which this connection does not allow";
                    bool honour = false;
                    infile_next_ = nullptr;
                    if (infile_armed_ && name == infile_expected_) {
                        honour = infile_source_(name, infile_next_, why) && infile_next_;
                    } else if (infile_source_) {
                        why = "the server asked for LOCAL INFILE '" + std::string(name) +
                              "', which is not the file of a LOAD DATA LOCAL statement just sent";
                    }
                    infile_armed_ = false;
                    infile_sent_ = honour;
                    infile_name_.assign(name);
                    infile_bytes_ = 0;
                    if (!honour) {
                        infile_next_ = nullptr;
                        deferred_.clear();
                        deferred_.kind = error_kind::client;
                        deferred_.code = errc::local_infile_refused;
                        deferred_.message = std::move(why);
                    }
                    st_ = st::infile_send;  // an empty file when refused
                    continue;
                }
                reader r(p);
                std::uint64_t n = r.lenenc();
                // MariaDB CACHE_METADATA: a flag says whether the definitions follow.
                const bool meta_follows = !(caps_ & cap::mariadb_cache_metadata) || r.u8() != 0;
                if (!r.ok() || !r.at_end() || n == 0 || n > 0xFFFF)
                    return fail(error_kind::protocol, errc::protocol_error, "malformed column count", false);
                ncols_ = static_cast<std::size_t>(n);
                cols_seen_ = 0;
                if (mode_ == mode::buffered) {
                    cur_ = &out_results_->add();
                } else {
                    cur_ = &stream_set_;
                    resultset::builder::reset(stream_set_);
                }
                resultset::builder::set_binary(*cur_, binary_rows_);
                if (!meta_follows) {
                    auto known = binary_rows_ ? stmt_info_.find(exec_stmt_) : stmt_info_.end();
                    if (known == stmt_info_.end() || known->second.meta.empty())
                        return fail(error_kind::protocol, errc::protocol_error,
                                    "the server skipped column definitions this connection does not have", false);
                    resultset::builder::set_meta(*cur_, known->second.meta);
                    cols_seen_ = ncols_;
                }
                st_ = st::columns;
                continue;
            }
            case st::columns: {
                const bool sent = cols_seen_ < ncols_;
                while (cols_seen_ < ncols_) {
                    if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                    resultset::builder::add_column(*cur_, p);
                    ++cols_seen_;
                }
                if (!resultset::builder::finish_columns(*cur_, ncols_))
                    return fail(error_kind::protocol, errc::protocol_error, "malformed column definition", false);
                // Definitions sent for a statement (first execute, or changed): kept for
                // the executes that will skip them.
                if (sent && binary_rows_ && (caps_ & cap::mariadb_cache_metadata) && exec_stmt_ != 0)
                    stmt_info_[exec_stmt_].meta = resultset::builder::meta(*cur_);
                if (!(caps_ & cap::deprecate_eof)) {
                    st_ = st::columns_eof;
                    continue;
                }
                st_ = st::rows;
                if (mode_ == mode::stream) {
                    stream_ = stream_state::rows;
                    return finish();
                }
                continue;
            }
            case st::columns_eof: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                ok_info ok;
                if (!is_eof_packet(p) || !parse_eof(p, ok))
                    return fail(error_kind::protocol, errc::protocol_error, "expected EOF after column definitions",
                                false);
                status_ = ok.status;
                st_ = st::rows;
                if (mode_ == mode::stream) {
                    stream_ = stream_state::rows;
                    return finish();
                }
                continue;
            }
            case st::rows: {
                for (;;) {
                    // A streamed batch holds views into the read buffer: once it has rows,
                    // take only what is already buffered, so the buffer does not move.
                    const bool fill = !(mode_ == mode::stream && batch_rows_ > 0);
                    if (!take(p, fill)) {
                        if (op_ == op::none) return next_action::done;
                        if (!fill) return finish();
                        return wait_input();
                    }
                    if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty row packet", false);
                    if (p[0] == 0xFF) return fail_server(p);
                    if (is_terminator(p)) {
                        ok_info ok;
                        bool good = (caps_ & cap::deprecate_eof) ? read_ok(p, ok)
                                                                 : parse_eof(p, ok);
                        if (!good)
                            // Long enough for an 8-byte field length: a row whose first
                            // field claims more bytes than the packet holds.
                            return fail(error_kind::protocol, errc::protocol_error,
                                        p.size() > 8 ? "malformed row: a field is longer than its packet"
                                                     : "malformed end-of-rows packet",
                                        false);
                        status_ = ok.status;
                        if (mode_ != mode::discard) resultset::builder::set_ok(*cur_, ok);
                        if (mode_ == mode::stream) {
                            stream_ = stream_state::set_done;
                            return finish();
                        }
                        if (status_ & server_status::more_results_exist) break;
                        stream_ = stream_state::idle;
                        return finish();
                    }
                    bool good = true;
                    if (mode_ == mode::buffered) {
                        good = binary_rows_ ? resultset::builder::add_binary_row(*cur_, p)
                                            : resultset::builder::add_text_row(*cur_, p);
                    } else if (mode_ == mode::stream) {
                        good = binary_rows_ ? parse_binary_row(p, stream_set_.columns(), reader_.base(), batch_fields_)
                                            : parse_text_row(p, ncols_, reader_.base(), batch_fields_);
                        ++batch_rows_;
                    }
                    if (!good) return fail(error_kind::protocol, errc::protocol_error, "malformed row", false);
                }
                st_ = st::first;
                continue;
            }
            case st::infile_send: {
                // The contents in packets of at most 1 MiB, read as the socket takes them,
                // then an empty packet.
                for (;;) {
                    if (output_pending()) return next_action::write;
                    if (op_ == op::none) return next_action::done;  // TLS failed
                    infile_chunk_.clear();
                    std::string why;
                    if (infile_next_) {
                        if (!infile_next_(infile_chunk_, why)) {
                            // Ending the data here would make the server keep a partial
                            // load: closing the connection makes it discard the statement.
                            infile_next_ = nullptr;
                            return fail(error_kind::client, errc::io_error,
                                        "reading LOCAL INFILE '" + infile_name_ + "' failed after " +
                                            std::to_string(infile_bytes_) + " bytes (" + why +
                                            "); the connection was closed so that the server discards the "
                                            "partial load",
                                        false);
                        }
                        infile_bytes_ += infile_chunk_.size();
                    }
                    constexpr std::size_t piece = 1 << 20;
                    for (std::size_t at = 0; at < infile_chunk_.size(); at += piece) {
                        std::size_t s = begin_packet(out_);
                        std::size_t n = std::min(piece, infile_chunk_.size() - at);
                        out_.insert(out_.end(), infile_chunk_.begin() + static_cast<std::ptrdiff_t>(at),
                                    infile_chunk_.begin() + static_cast<std::ptrdiff_t>(at + n));
                        end_packet(out_, s, seq_);
                    }
                    if (!infile_chunk_.empty()) continue;
                    std::size_t s = begin_packet(out_);  // the end
                    end_packet(out_, s, seq_);
                    infile_next_ = nullptr;
                    infile_chunk_.clear();
                    infile_chunk_.shrink_to_fit();
                    st_ = st::infile_ack;
                    break;
                }
                continue;
            }
            case st::infile_ack: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
                if (p[0] != 0x00 && p[0] != 0xFF)
                    return fail(error_kind::protocol, errc::protocol_error, "unexpected reply to LOCAL INFILE data",
                                false);
                if (p[0] == 0xFF) return fail_server(p);  // reports the refusal first, if any
                // Honoured: the LOAD DATA's own result. Refused: read what later statements
                // answer; finish() then reports the refusal.
                if (!infile_sent_) mode_ = mode::discard;
                st_ = st::first;
                next_action done;
                if (statement_ok(p, done)) return done;
                continue;
            }
            default: return fail(error_kind::protocol, errc::protocol_error, "bad query state", false);
        }
    }
}

// ---------------------------------------------------------------- simple commands

bool session::start_simple(std::uint8_t cmd, std::string_view arg) {
    if (!can_start()) return false;
    start_op(op::simple, st::simple_reply);
    simple_cmd_ = cmd;
    std::size_t s = out_.size();
    begin_command(cmd);
    out_.insert(out_.end(), arg.begin(), arg.end());
    end_packet(out_, s, seq_);
    return true;
}

bool session::start_ping() { return start_simple(command::ping, {}); }
bool session::start_init_db(std::string_view db) { return start_simple(command::init_db, db); }
bool session::start_reset_connection() { return start_simple(command::reset_connection, {}); }

bool session::start_quit() {
    if (op_ != op::none) return false;
    diag_.clear();
    if (!connected_ || broken_) {
        connected_ = false;
        return true;  // nothing to say; resume() is done at once
    }
    start_op(op::quit, st::flush);
    std::size_t s = out_.size();
    begin_command(command::quit);
    end_packet(out_, s, seq_);
    return true;
}

void session::close() noexcept {
    op_ = op::none;
    forget_statements();
    connected_ = false;
    stream_ = stream_state::idle;
    reset_wire();
}

// Every buffer and layer between the packets and the socket, back to a fresh connection's.
void session::reset_wire() noexcept {
    out_.clear();
    out_pos_ = 0;
    net_out_.clear();
    net_out_pos_ = 0;
    reader_.reset();
    reader_.set_check_sequence(true);
    tls_.reset();
    tls_on_ = false;
    zf_.reset();
    zon_ = false;
    zout_.clear();
    zout_pos_ = 0;
}

next_action session::step_simple() {
    if (st_ == st::flush || st_ == st::flush_only) {
        if (output_pending()) return next_action::write;
        if (op_ == op::none) return next_action::done;  // TLS failed
        if (st_ == st::flush) connected_ = false;
        return finish();
    }
    byte_span p;
    if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
    if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
    if (p[0] == 0xFF) return fail_server(p);
    ok_info ok;
    if (p[0] != 0x00 || !read_ok(p, ok))
        return fail(error_kind::protocol, errc::protocol_error, "expected an OK packet", false);
    status_ = ok.status;
    if (simple_cmd_ == command::reset_connection) {
        // The server dropped every prepared statement of the session, and its character
        // set is the handshake's again.
        reset_session_state();
        if (ok.status & server_status::session_state_changed) (void)read_ok(p, ok);
        forget_statements();
    }
    return finish();
}

// ---------------------------------------------------------------- prepared statements

bool session::start_prepare(std::string_view sql, statement* out) {
    if (!can_start()) return false;
    start_op(op::prepare, st::prep_ok);
    prep_out_ = out;
    then_execute_ = exec_pipelined_ = cache_result_ = then_bulk_ = false;
    std::size_t s = out_.size();
    begin_command(command::stmt_prepare);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, s, seq_);
    return true;
}

bool session::start_execute(const statement& st, std::span<const sql_arg> args, results* out) {
    if (!can_start()) return false;
    if (args.size() != st.params) {
        fail(error_kind::client, errc::placeholder_mismatch, param_count_message(st.params, args.size()), true);
        return false;
    }
    if (!build_execute(st.id, args)) {
        fail(error_kind::client, errc::bad_value, unbindable, true);
        return false;
    }
    for (const auto& ld : long_payloads_) write_command(ld, st.id);
    write_command(exec_payload_, st.id);
    start_op(op::query, st::first);
    begin_results(out, true);
    exec_stmt_ = st.id;
    return true;
}

// Serialises an execute of statement `id` into exec_payload_, preceded by the
// SEND_LONG_DATA payloads of its large parameters (long_payloads_).
bool session::build_execute(std::uint32_t id, std::span<const sql_arg> args) {
    long_payloads_.clear();
    exec_payload_.clear();
    // A new statement's types are recorded once its id is known (prepared()).
    if (id == last_prepared_statement) prep_types_.clear();
    if (write_execute(exec_payload_, id, args, true,
                      id == last_prepared_statement ? &prep_types_ : &stmt_info_[id].types))
        return false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (!is_long_data(args[i])) continue;
        std::string_view data = args[i].text();
        for (std::size_t at = 0; at < data.size(); at += long_data_piece)
            write_long_data(long_payloads_.emplace_back(), id, static_cast<std::uint16_t>(i),
                            data.substr(at, long_data_piece));
    }
    return true;
}

// One COM_STMT_EXECUTE command packet, values inline; false (nothing appended) when an
// argument cannot be bound.
bool session::append_execute(std::uint32_t id, std::span<const sql_arg> args) {
    new_exchange(0);
    const std::size_t at = begin_packet(out_);
    if (write_execute(out_, id, args, false, id == last_prepared_statement ? nullptr : &stmt_info_[id].types)) {
        out_.resize(at);
        return false;
    }
    end_packet(out_, at, seq_);
    return true;
}

// One command packet (sequence 0) with the statement id written at bytes 1..4.
void session::write_command(std::span<const std::uint8_t> payload, std::uint32_t id) {
    new_exchange(0);
    const std::size_t s = begin_packet(out_);
    out_.insert(out_.end(), payload.begin(), payload.end());
    for (int i = 0; i < 4; ++i) out_[s + 4 + 1 + i] = static_cast<std::uint8_t>(id >> (8 * i));
    end_packet(out_, s, seq_);
}

bool session::start_execute(std::string_view sql, std::span<const sql_arg> args, results* out) {
    if (auto it = cache_index_.find(sql); it != cache_index_.end()) {
        cache_.splice(cache_.begin(), cache_, it->second);  // most recently used
        return start_execute(it->second->second, args, out);
    }
    if (op_ == op::none) evict_for_insert();
    if (!can_start()) return false;
    if (!build_execute(last_prepared_statement, args)) {
        fail(error_kind::client, errc::bad_value, unbindable, true);
        return false;
    }
    start_op(op::prepare, st::prep_ok);
    begin_results(out, true);
    prep_out_ = nullptr;
    prep_sql_.assign(sql);
    then_execute_ = cache_result_ = true;
    then_bulk_ = false;
    // MariaDB executes "the statement just prepared" (id 0xFFFFFFFF): one round trip;
    // large parameters need the real id for their SEND_LONG_DATA, so they wait for it.
    exec_pipelined_ = hs_.is_mariadb && long_payloads_.empty();
    std::size_t s = out_.size();
    begin_command(command::stmt_prepare);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, s, seq_);
    if (exec_pipelined_) {
        std::uint8_t seq = 0;
        s = begin_packet(out_);
        out_.insert(out_.end(), exec_payload_.begin(), exec_payload_.end());
        end_packet(out_, s, seq);
    }
    return true;
}

bool session::start_close_statement(std::uint32_t id) {
    if (!can_start()) return false;
    start_op(op::simple, st::flush_only);
    simple_cmd_ = command::stmt_close;
    pending_closes_.push_back(id);
    write_pending_closes();
    return true;
}

bool session::start_reset_statement(std::uint32_t id) {
    std::uint8_t le[4] = {static_cast<std::uint8_t>(id), static_cast<std::uint8_t>(id >> 8),
                          static_cast<std::uint8_t>(id >> 16), static_cast<std::uint8_t>(id >> 24)};
    if (!start_simple(command::stmt_reset, std::string_view(reinterpret_cast<const char*>(le), 4))) return false;
    if (auto it = stmt_info_.find(id); it != stmt_info_.end()) it->second.types.clear();  // sent again next time
    return true;
}

// Makes room for one more statement: the victim's close goes out ahead of the prepare,
// so the server never holds more statements than the cache.
void session::evict_for_insert() {
    if (cache_capacity_ > 0 && cache_.size() >= cache_capacity_) evict_lru();
}

// Drops the least recently used statement; its close goes out with the next command.
void session::evict_lru() {
    pending_closes_.push_back(cache_.back().second.id);
    cache_index_.erase(cache_.back().first);
    cache_.pop_back();
}

void session::cache_insert(std::string_view sql, const statement& st) {
    if (cache_capacity_ == 0 || cache_index_.count(sql)) {
        pending_closes_.push_back(st.id);  // used once, or prepared twice in one pipeline
        return;
    }
    cache_.emplace_front(std::string(sql), st);
    cache_index_[cache_.front().first] = cache_.begin();
    while (cache_.size() > cache_capacity_) evict_lru();
}

next_action session::step_prepare() {
    for (;;) {
        byte_span p;
        switch (st_) {
            case st::prep_ok: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
                if (p[0] == 0xFF) {
                    if (!exec_pipelined_) return fail_server(p);
                    // The execute sent behind it fails as well: read its answer, then
                    // report this failure.
                    fail_server(p);
                    if (!connected()) return next_action::done;
                    deferred_ = diag_;
                    diag_.clear();
                    op_ = op::query;
                    st_ = st::first;
                    mode_ = mode::discard;
                    new_exchange(1);
                    return step_query();
                }
                prepare_ok ok;
                if (!parse_prepare_ok(p, ok))
                    return fail(error_kind::protocol, errc::protocol_error, "malformed prepare response", false);
                prep_ = statement{ok.statement_id, ok.params, ok.columns};
                prep_defs_left_ = ok.params;
                prep_meta_.clear();
                st_ = st::prep_params;
                continue;
            }
            case st::prep_params:
            case st::prep_columns: {
                while (prep_defs_left_ > 0) {
                    if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                    --prep_defs_left_;
                    // Column definitions are kept when executes may skip them.
                    if (st_ == st::prep_columns && (caps_ & cap::mariadb_cache_metadata)) {
                        resultset::builder::append_column(prep_meta_, p);
                    }
                }
                const bool params = st_ == st::prep_params;
                if ((params ? prep_.params : prep_.columns) > 0 && !(caps_ & cap::deprecate_eof)) {
                    st_ = params ? st::prep_params_eof : st::prep_columns_eof;
                    continue;
                }
                if (!params) return prepared();
                prep_defs_left_ = prep_.columns;
                st_ = st::prep_columns;
                continue;
            }
            case st::prep_params_eof:
            case st::prep_columns_eof: {
                if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
                if (!is_eof_packet(p))
                    return fail(error_kind::protocol, errc::protocol_error, "expected EOF after definitions", false);
                if (st_ == st::prep_columns_eof) return prepared();
                prep_defs_left_ = prep_.columns;
                st_ = st::prep_columns;
                continue;
            }
            default: return fail(error_kind::protocol, errc::protocol_error, "bad prepare state", false);
        }
    }
}

next_action session::prepared() {
    if (prep_out_) *prep_out_ = prep_;
    stmt_state& known = stmt_info_[prep_.id];
    if ((caps_ & cap::mariadb_cache_metadata) && prep_.columns > 0) known.meta.swap(prep_meta_);
    if (then_execute_) known.types.swap(prep_types_);  // empty unless the execute's types are known
    prep_types_.clear();
    exec_stmt_ = prep_.id;
    if (cache_result_) cache_insert(prep_sql_, prep_);
    if (then_bulk_) {
        if (prep_.params != bulk_width_)
            return fail(error_kind::client, errc::placeholder_mismatch,
                        "the statement has " + std::to_string(prep_.params) + " parameters, rows have " +
                            std::to_string(bulk_width_) + " values",
                        true);
        if (!(caps_ & cap::mariadb_stmt_bulk)) {
            // MySQL: no bulk command, no execute of "the statement just prepared": the rows
            // as pipelined executes of the statement, now that its id is known. Its close,
            // when the cache does not keep it, goes out after them.
            const bool owed = !pending_closes_.empty() && pending_closes_.back() == prep_.id;
            if (owed) pending_closes_.pop_back();
            op_ = op::none;
            start_pipeline(executes_of(prep_, bulk_values_, bulk_width_));
            if (owed) pending_closes_.push_back(prep_.id);
            return op_ == op::none ? end_pipeline() : step_pipeline();
        }
        bulk_id_ = prep_.id;
        op_ = op::bulk;
        return send_bulk_batch();
    }
    if (!then_execute_) return finish();
    if (exec_pipelined_) {
        new_exchange(1);  // the execute's response follows, numbered from its own request
    } else {
        for (const auto& ld : long_payloads_) write_command(ld, prep_.id);
        write_command(exec_payload_, prep_.id);
    }
    op_ = op::query;
    st_ = st::first;
    return step_query();
}

// ---------------------------------------------------------------- session state

bool session::read_ok(byte_span p, ok_info& ok) {
    const bool tracking = (caps_ & cap::session_track) != 0;
    session_changes ch;
    if (!parse_ok(p, tracking, ok, &ch)) return false;
    if (ch.charset_changed) {
        charset_ = ch.charset;
        unsafe_charset_ = is_unsafe_charset(ch.charset);
        charset_unknown_ = false;
    }
    if (ch.schema_changed) schema_ = ch.schema;
    return true;
}

void session::reset_session_state() {
    charset_ = cfg_ ? cfg_->charset : std::string();
    unsafe_charset_ = is_unsafe_charset(charset_);
    charset_unknown_ = false;
}

// Without session tracking the driver cannot see `SET NAMES` and friends take effect:
// after SQL that may change the character set, interpolation is refused (until a reset
// or a new connection) rather than done with rules that may be wrong.
void session::note_untracked_changes(std::string_view sql) {
    if (caps_ & cap::session_track) return;
    std::string upper;  // upper case, blanks collapsed
    upper.reserve(sql.size());
    for (char c : sql) {
        const bool blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (blank) {
            if (!upper.empty() && upper.back() != ' ') upper += ' ';
        } else {
            upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
    }
    auto statement_start = [&](std::size_t at) {  // at the start of a statement
        while (at > 0 && upper[at - 1] == ' ') --at;
        return at == 0 || upper[at - 1] == ';';
    };
    bool changes = upper.find("CHARACTER_SET_CLIENT") != std::string::npos;
    for (std::string_view needle : {"SET NAMES", "SET CHARACTER SET", "SET CHARSET"}) {
        for (std::size_t at = upper.find(needle); !changes && at != std::string::npos; at = upper.find(needle, at + 1))
            changes = statement_start(at);
    }
    if (changes) {
        charset_unknown_ = true;
        charset_.clear();
    }
}

// ---------------------------------------------------------------- pipelines

namespace {
// How a stage runs (pipeline::stage::plan_).
enum plan : std::uint8_t { p_unplanned, p_failed, p_text, p_binary, p_prepare_execute, p_prepare, p_simple };
}  // namespace

namespace {
// SQL that may change how values must be escaped (character set, sql_mode's
// NO_BACKSLASH_ESCAPES), or run SQL that does: interpolated stages after it in a pipeline
// are formatted once it has been answered. False positives cost only that wait.
bool may_change_escaping(std::string_view sql) {
    std::string upper(sql.size(), ' ');
    for (std::size_t i = 0; i < sql.size(); ++i) upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i])));
    for (std::string_view w : {"NAMES", "CHARACTER", "CHARSET", "SQL_MODE", "EXECUTE"})
        if (upper.find(w) != std::string::npos) return true;
    return false;
}
}  // namespace

bool session::start_pipeline(pipeline& pl) {
    if (!can_start()) return false;
    for (std::size_t i = 0; i < pl.size(); ++i) {
        pl[i].plan_ = p_unplanned;
        pl[i].diag_.clear();
        pl[i].res_.clear();
    }
    pipe_ = &pl;
    pipe_buf_.clear();
    pipe_ends_.clear();
    pipe_sent_ = 0;
    plan_stages(0);
    start_op(op::pipeline, st::first);
    stage_ = 0;
    if (!setup_stage()) op_ = op::none;  // nothing was sent
    return true;
}

// Serialises the requests of stages `from`... into pipe_buf_: up to the end, or up to an
// interpolated stage behind one that may change the escaping rules (a SET NAMES, an
// sql_mode change, a reset): that one and the rest are planned when every stage before
// it has been answered, so their values are escaped by the rules then in force.
void session::plan_stages(std::size_t from) {
    pipeline& pl = *pipe_;
    const std::size_t base = out_.size();  // (pending closes before it go out at once)
    // The SQL of the statement prepared last in this plan: a later stage executing the
    // same SQL uses id 0xFFFFFFFF instead of preparing it again.
    std::string_view last_prepared;
    bool have_last = false;
    bool rules_may_change = false;
    std::size_t i = from;
    for (; i < pl.size(); ++i) {
        pipeline::stage& s = pl[i];
        if (s.kind_ == pipeline::kind::query_args && rules_may_change) break;
        auto refuse = [&](errc code, std::string msg) {
            s.plan_ = p_failed;
            s.diag_.kind = error_kind::client;
            s.diag_.code = code;
            s.diag_.message = std::move(msg);
        };
        auto simple = [&](std::uint8_t cmd, std::string_view arg) {
            std::size_t at = out_.size();
            begin_command(cmd);
            out_.insert(out_.end(), arg.begin(), arg.end());
            end_packet(out_, at, seq_);
            s.plan_ = p_simple;
        };
        switch (s.kind_) {
            case pipeline::kind::query_args:
                sql_scratch_.clear();
                if (auto ec = format_sql(sql_scratch_, s.sql_, s.args_.args, escaping_rules())) {
                    refuse(static_cast<errc>(ec.value()), ec.message());
                    break;
                }
                note_untracked_changes(sql_scratch_);
                rules_may_change |= may_change_escaping(sql_scratch_);
                simple(command::query, sql_scratch_);
                s.plan_ = p_text;
                break;
            case pipeline::kind::query:
                note_untracked_changes(s.sql_);
                rules_may_change |= may_change_escaping(s.sql_);
                simple(command::query, s.sql_);
                s.plan_ = p_text;
                break;
            case pipeline::kind::execute:
            case pipeline::kind::execute_statement: {
                statement st = s.st_;
                bool cached = s.kind_ == pipeline::kind::execute_statement;
                rules_may_change |= may_change_escaping(s.sql_);
                if (!cached) {
                    if (auto it = cache_index_.find(s.sql_); it != cache_index_.end()) {
                        cache_.splice(cache_.begin(), cache_, it->second);
                        st = it->second->second;
                        cached = true;
                    }
                }
                const bool same_as_last = hs_.is_mariadb && have_last && last_prepared == s.sql_;
                if (cached && s.args_.args.size() != st.params) {
                    refuse(errc::placeholder_mismatch, param_count_message(st.params, s.args_.args.size()));
                    break;
                }
                if (cached || same_as_last) {
                    s.st_.id = cached ? st.id : last_prepared_statement;  // whose answer the stage reads
                    if (!append_execute(s.st_.id, s.args_.args))
                        refuse(errc::bad_value, unbindable);
                    else
                        s.plan_ = p_binary;
                    break;
                }
                if (!hs_.is_mariadb) {
                    refuse(errc::bad_value,
                           "this server cannot prepare and execute in one round trip: execute the statement once "
                           "outside the pipeline so that it is cached");
                    break;
                }
                exec_payload_.clear();
                if (write_execute(exec_payload_, last_prepared_statement, s.args_.args)) {
                    refuse(errc::bad_value, unbindable);
                    break;
                }
                evict_for_insert();
                write_pending_closes();
                simple(command::stmt_prepare, s.sql_);
                std::uint8_t seq = 0;
                std::size_t at = begin_packet(out_);
                out_.insert(out_.end(), exec_payload_.begin(), exec_payload_.end());
                end_packet(out_, at, seq);
                s.plan_ = p_prepare_execute;
                last_prepared = s.sql_;
                have_last = true;
                break;
            }
            case pipeline::kind::prepare:
                simple(command::stmt_prepare, s.sql_);
                s.plan_ = p_prepare;
                have_last = false;
                break;
            case pipeline::kind::ping: simple(command::ping, {}); break;
            case pipeline::kind::select_db: simple(command::init_db, s.sql_); break;
            case pipeline::kind::reset_connection:
                simple(command::reset_connection, {});
                // The server drops every statement: later stages prepare what they
                // execute (none is cached, none "just prepared"); what the server held
                // is forgotten when the reset is answered (setup_stage).
                cache_.clear();
                cache_index_.clear();
                pending_closes_.clear();
                have_last = false;
                rules_may_change = true;  // the handshake's character set, the global sql_mode
                break;
        }
        pipe_ends_.push_back(pipe_buf_.size() + out_.size() - base);
    }
    pipe_buf_.insert(pipe_buf_.end(), out_.begin() + static_cast<std::ptrdiff_t>(base), out_.end());
    out_.resize(base);
    pipe_planned_ = i;
}

bool session::setup_stage() {
    for (;;) {
        if (stage_ == pipe_planned_ && stage_ < pipe_->size()) plan_stages(stage_);  // every earlier stage answered
        if (stage_ == pipe_->size() || (*pipe_)[stage_].plan_ != p_failed) break;
        ++stage_;
    }
    if (stage_ == pipe_->size()) return false;
    pipeline::stage& s = (*pipe_)[stage_];
    new_exchange(1);  // each response is numbered from its own request
    diag_.clear();
    deferred_.clear();
    switch (s.plan_) {
        case p_text:
        case p_binary:
            sub_op_ = op::query;
            st_ = st::first;
            begin_results(&s.res_, s.plan_ == p_binary);
            // An execute of "the statement just prepared" answers for the last prepare read.
            exec_stmt_ = s.st_.id == last_prepared_statement ? prep_.id : s.st_.id;
            break;
        case p_prepare_execute:
            sub_op_ = op::prepare;
            st_ = st::prep_ok;
            begin_results(&s.res_, true);
            prep_out_ = nullptr;
            prep_sql_ = s.sql_;
            then_execute_ = cache_result_ = exec_pipelined_ = true;
            then_bulk_ = false;
            break;
        case p_prepare:
            sub_op_ = op::prepare;
            st_ = st::prep_ok;
            prep_out_ = &s.st_;
            then_execute_ = cache_result_ = exec_pipelined_ = then_bulk_ = false;
            break;
        default:
            sub_op_ = op::simple;
            st_ = st::simple_reply;
            // A reset's answer, as outside a pipeline, forgets every statement (those the
            // earlier stages prepared too) and restores the handshake's session state.
            simple_cmd_ = s.kind_ == pipeline::kind::reset_connection ? command::reset_connection : 0;
            break;
    }
    return true;
}

// Hands the next requests to out_: everything up to the end of the stage being answered,
// and up to pipe_window bytes beyond its start.
void session::feed_pipeline() {
    constexpr std::size_t pipe_window = 64 * 1024;
    if (stage_ >= pipe_ends_.size() || pipe_sent_ == pipe_buf_.size()) return;
    const std::size_t start = stage_ == 0 ? 0 : pipe_ends_[stage_ - 1];
    const std::size_t upto = std::min(pipe_buf_.size(), std::max(pipe_ends_[stage_], start + pipe_window));
    if (upto <= pipe_sent_) return;
    out_.insert(out_.end(), pipe_buf_.begin() + static_cast<std::ptrdiff_t>(pipe_sent_),
                pipe_buf_.begin() + static_cast<std::ptrdiff_t>(upto));
    pipe_sent_ = upto;
}

next_action session::step_pipeline() {
    for (;;) {
        feed_pipeline();
        op_ = sub_op_;
        next_action a = sub_op_ == op::query ? step_query() : sub_op_ == op::prepare ? step_prepare() : step_simple();
        if (op_ != op::none) {  // the stage waits for bytes (or sends some)
            sub_op_ = op_;      // a prepare + execute stage moves on to the execute's response
            op_ = op::pipeline;
            return a;
        }
        if (stage_ == pipe_->size()) return end_pipeline();  // the stages' closes went out
        pipeline::stage& s = (*pipe_)[stage_];
        s.diag_ = diag_;
        if (broken_) {
            // The connection is gone: so are the answers of the stages after this one.
            for (std::size_t i = stage_ + 1; i < pipe_->size(); ++i)
                if ((*pipe_)[i].plan_ != p_failed) (*pipe_)[i].diag_ = diag_;
            pipe_ = nullptr;
            return next_action::done;
        }
        ++stage_;
        if (!setup_stage()) {
            diag_.clear();
            if (!pending_closes_.empty()) {
                // Statements the stages evicted, or prepared twice: closed before the
                // pipeline counts as done, not with the next command.
                write_pending_closes();
                sub_op_ = op::simple;
                st_ = st::flush_only;
                continue;
            }
            return end_pipeline();
        }
    }
}

next_action session::end_pipeline() {
    op_ = op::none;
    if (pipe_ == &bulk_pipe_) {  // execute_many without bulk operations: sum up
        std::uint64_t total = 0;
        const diagnostics* first_error = nullptr;
        for (std::size_t i = 0; i < bulk_pipe_.size(); ++i) {
            if (!bulk_pipe_[i].ok()) {
                if (!first_error) first_error = &bulk_pipe_[i].error();
            } else {
                total += bulk_pipe_[i].result().affected_rows();
            }
        }
        ok_info ok;
        ok.affected_rows = total;
        ok.status = status_;
        if (bulk_out_) resultset::builder::set_ok(bulk_out_->add(), ok);
        if (first_error) diag_ = *first_error;
    }
    pipe_ = nullptr;
    return next_action::done;
}

// ---------------------------------------------------------------- execute_many

bool session::start_execute_many(std::string_view sql, std::span<const sql_arg> values, std::size_t width,
                                 results* out) {
    if (width == 0 || values.size() % width != 0) {
        if (!can_start()) return false;
        fail(error_kind::client, errc::placeholder_mismatch, "execute_many: the values do not form whole rows", true);
        return false;
    }
    if (out) out->clear();
    auto it = cache_index_.find(sql);
    if (!(caps_ & cap::mariadb_stmt_bulk) && (it != cache_index_.end() || hs_.is_mariadb)) {
        // Pipelined executes through the cache (MariaDB prepares in the same round trip).
        bulk_pipe_.clear();
        for (std::size_t r = 0; r < values.size() / width; ++r)
            bulk_pipe_.execute_args(sql, values.subspan(r * width, width));
        bulk_out_ = out;
        return start_pipeline(bulk_pipe_);
    }
    if (it == cache_index_.end()) evict_for_insert();
    if (!can_start()) return false;
    bulk_values_ = values;
    bulk_width_ = width;
    bulk_next_ = 0;
    bulk_affected_ = 0;
    bulk_out_ = out;
    if (it != cache_index_.end()) {
        cache_.splice(cache_.begin(), cache_, it->second);
        const statement& st = it->second->second;
        if (st.params != width) {
            fail(error_kind::client, errc::placeholder_mismatch,
                 "the statement has " + std::to_string(st.params) + " parameters, rows have " + std::to_string(width) +
                     " values",
                 true);
            return false;
        }
        bulk_id_ = st.id;
        stmt_info_[st.id].types.clear();  // bulk executes bind types of their own
        start_op(op::bulk, st::bulk_reply);
        if (values.empty()) {  // nothing to send
            op_ = op::none;
            ok_info ok;
            if (out) resultset::builder::set_ok(out->add(), ok);
            return true;
        }
        send_bulk_batch();
        return op_ != op::none || !failed();
    }
    // Prepared first (one round trip), then the batches.
    start_op(op::prepare, st::prep_ok);
    prep_out_ = nullptr;
    prep_sql_.assign(sql);
    cache_result_ = then_bulk_ = true;
    then_execute_ = exec_pipelined_ = false;
    std::size_t at = out_.size();
    begin_command(command::stmt_prepare);
    out_.insert(out_.end(), sql.begin(), sql.end());
    end_packet(out_, at, seq_);
    return true;
}

// execute_many without bulk operations: one execute stage of `st` per row.
pipeline& session::executes_of(const statement& st, std::span<const sql_arg> values, std::size_t width) {
    bulk_pipe_.clear();
    for (std::size_t r = 0; r < values.size() / width; ++r)
        bulk_pipe_.stages_[bulk_pipe_.add(pipeline::kind::execute_statement, {}, values.subspan(r * width, width))]
            .st_ = st;
    return bulk_pipe_;
}

// Writes the next batch of rows; the reply is read in st::bulk_reply.
next_action session::send_bulk_batch() {
    constexpr std::size_t batch_bytes = 1 << 20;  // well under any max_allowed_packet in use
    if (bulk_next_ * bulk_width_ >= bulk_values_.size()) {  // no rows at all
        ok_info ok;
        if (bulk_out_) resultset::builder::set_ok(bulk_out_->add(), ok);
        return finish();
    }
    new_exchange(0);
    std::size_t at = begin_packet(out_);
    std::size_t next = bulk_next_;
    if (write_bulk_execute(out_, bulk_id_, bulk_values_, bulk_width_, bulk_next_, batch_bytes, next)) {
        out_.resize(at);
        return fail(error_kind::client, errc::bad_value,
                    "execute_many: a column mixes value types (or holds an identifier)", true);
    }
    end_packet(out_, at, seq_);
    bulk_next_ = next;
    st_ = st::bulk_reply;
    return next_action::write;
}

next_action session::step_bulk() {
    byte_span p;
    if (!take(p)) return op_ == op::none ? next_action::done : wait_input();
    if (p.empty()) return fail(error_kind::protocol, errc::protocol_error, "empty response packet", false);
    if (p[0] == 0xFF) return fail_server(p);  // rows of earlier batches stay applied
    ok_info ok;
    if (p[0] != 0x00 || !read_ok(p, ok))
        return fail(error_kind::protocol, errc::protocol_error, "expected an OK packet after a bulk execute", false);
    status_ = ok.status;
    bulk_affected_ += ok.affected_rows;
    if (bulk_next_ * bulk_width_ < bulk_values_.size()) return send_bulk_batch();
    ok.affected_rows = bulk_affected_;
    if (bulk_out_) resultset::builder::set_ok(bulk_out_->add(), ok);
    return finish();
}

}  // namespace ambisql::proto
