#pragma once
// Connection settings, from code or from a URL.
#include <chrono>
#include <functional>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ambisql {

enum class ssl_mode : std::uint8_t {
    disabled,         // never TLS
    preferred,        // TLS when the server offers it over TCP, no verification
    required,         // TLS or fail; no verification
    verify_ca,        // TLS, the certificate must chain to ssl_ca
    verify_identity,  // verify_ca, and the certificate must name the host
};

const char* to_string(ssl_mode m) noexcept;

struct host_port {
    std::string host;
    std::uint16_t port = 3306;
};

// How a connect picks among several hosts (config::hosts).
enum class host_mode : std::uint8_t {
    sequential,    // the first that works, in the order given
    load_balance,  // in a random order per connect (spreads connections over the nodes)
};

struct config {
    std::string host = "127.0.0.1";  // host name, IPv4 or IPv6 literal
    // When set, the address to connect to instead of resolving `host`; `host` is still
    // the name TLS verify-identity checks the certificate against.
    std::string host_address;
    std::uint16_t port = 3306;
    // When set, the local address (an IPv4 or IPv6 literal) TCP connections are made from,
    // as a client's bind-address option: what the server's host-based grants see.
    std::string bind_address;
    std::string unix_socket;         // when set, used instead of host/port
    std::string user;
    std::string password;
    std::string database;

    ssl_mode ssl = ssl_mode::preferred;
    // CA file (PEM) for verify_ca / verify_identity; empty: the system's trust store
    // (OpenSSL's default paths, SSL_CERT_FILE / SSL_CERT_DIR), as for a managed database.
    std::string ssl_ca;
    std::string ssl_capath;  // a directory of CA certificates (hashed names, c_rehash), with or instead of ssl_ca
    std::string ssl_ca_pem;  // CA certificates as PEM text, with or instead of the two above
    std::string ssl_cert;    // client certificate (PEM), optional
    std::string ssl_key;     // client key (PEM), optional
    // The oldest TLS version accepted: 0x0303 (TLS 1.2, the oldest ever accepted) or 0x0304 (TLS 1.3).
    std::uint16_t tls_min_version = 0x0303;

    // Collation sent in the handshake; the connection's character set follows from it.
    std::string charset = "utf8mb4";

    std::chrono::milliseconds connect_timeout{10000};  // TCP connect + handshake
    std::chrono::milliseconds read_timeout{0};         // per wait; 0 = none
    std::chrono::milliseconds write_timeout{0};        // per wait; 0 = none
    // A cancelled command (cancel(), a signal, a killed fiber, greenlet or task) is killed
    // on the server and its response drained, so the connection stays usable; if that is
    // not over within this time (a server, or a path to it, that does not answer), the
    // connection is closed instead. 0 = wait as long as the read timeout allows.
    std::chrono::milliseconds cancel_timeout{5000};
    // TCP keepalive (TCP connections): a server that vanished without a word (power loss,
    // a partition, a dropped NAT entry: no FIN, no RST) is noticed with no read timeout set,
    // whether the connection idles in a pool or waits for an answer. Probes begin after
    // keepalive_idle without traffic, keepalive_interval apart; after keepalive_count
    // unanswered ones the connection fails (errc::io_error, then closed). The same total
    // bounds how long sent data may stay unacknowledged (TCP_USER_TIMEOUT), which keepalive
    // alone does not: Linux retransmits for about 15 minutes. Defaults: 30 s + 3 x 5 s, a
    // dead peer found within 45 s. Why these: the kernel's own (2 h + 9 x 75 s) outlast any
    // request and most firewalls' idle timeouts; a live server's kernel answers probes and
    // acknowledges data within milliseconds even while a query runs for hours, so a long
    // query is never cut; and the cost is one empty packet per idle connection every 30 s
    // (a 300-connection pool: 10 packets/s). Where a path loses packets for over 45 s and
    // then recovers, raise the values, or turn keepalive off and set read/write timeouts.
    bool keepalive = true;
    std::chrono::seconds keepalive_idle{30};
    std::chrono::seconds keepalive_interval{5};
    int keepalive_count = 3;
    // A blocking pipeline (no wait hook on the thread) polls the socket for up to this long
    // for each of its responses before it sleeps: while the server works through the queue,
    // responses follow each other at its pace, and a client asleep in the kernel costs the
    // server a wake-up per response (measured: ~4 us of server CPU per execute, a fifth of
    // it, on the benchmark machine). Spinning buys throughput with client CPU; 0 = always sleep.
    // Single commands, and waits through a hook (fibers, event loops), never spin.
    std::chrono::microseconds pipeline_spin{50};
    // While a large result streams in (256 KiB received so far, rows of 16 KiB or less), a
    // blocking receive (no wait hook) that finds the socket empty first sleeps this long,
    // so that what the server writes meanwhile is read in one go: the server is spared a
    // wake-up of the client per chunk it writes, and the client sleeps less often
    // (measured on the benchmark machine: scan 1.2x rows/s at 0.75x client CPU). Costs at
    // most this much latency per stall of a large result; 0 = off.
    std::chrono::microseconds read_coalescing{100};

    bool multi_statements = true;
    // CLIENT_FOUND_ROWS: an UPDATE reports the rows it matched, not only those it changed
    // (what ORMs' stale-data checks expect). URL found-rows=1.
    bool found_rows = false;
    // Protocol compression (zlib), when the server offers it: worth it on slow links and
    // for large results; it costs CPU on both sides.
    bool compress = false;
    int compression_level = 1;  // zlib's 1 (fastest) .. 9 (smallest) for what the client sends
    bool deprecate_eof = true;  // negotiate CLIENT_DEPRECATE_EOF when the server has it
    std::string server_rsa_public_key;  // PEM, for caching_sha2_password without TLS
    // caching_sha2_password full authentication without TLS and without
    // server_rsa_public_key: ask the server for its key. Off by default: over an
    // unencrypted link the key cannot be told from an attacker's, who could then decrypt
    // the password; with it off such a login fails with an auth error instead.
    bool get_server_public_key = false;
    // Largest packet accepted from the server (reassembled), at most 1 GiB (the protocol's
    // own limit); a larger packet is a protocol error, a larger setting a config error.
    std::uint32_t max_packet_size = 1u << 30;
    std::vector<std::pair<std::string, std::string>> connect_attributes;
    // Prepared statements kept per connection by execute(sql, ...) (least recently used
    // are closed on the server); 0 closes each one right after its execution.
    std::size_t statement_cache_size = 64;

    // LOAD DATA LOCAL INFILE, off unless one of these is set. A server's request for a
    // file is honoured only right after a LOAD DATA LOCAL INFILE statement this
    // connection sent, and only for the file name that statement gave; anything else is
    // refused (the query fails with errc::local_infile_refused, the connection stays
    // usable). Then the file must be listed in local_infile_allow (exact paths; read and
    // sent 1 MiB at a time, so files of any size need little memory; a read error closes
    // the connection, so that the server discards the partial load), or
    // local_infile_handler produces its contents (in memory; return false to refuse).
    std::vector<std::string> local_infile_allow;
    std::function<bool(std::string_view file_name, std::string& data)> local_infile_handler;

    // ---- several servers (a Galera cluster, primary and replicas)
    // When set, a connect tries these (host and port above are then unused) until one
    // works, within the one connect_timeout; a host that failed is passed over for
    // host_backoff (doubling at each failure, up to 30 s) while others remain, for every
    // connection of the process.
    std::vector<host_port> hosts;
    host_mode hosts_mode = host_mode::sequential;
    std::chrono::milliseconds host_backoff{1000};
    // Galera: after connecting, a node that is not Synced and ready (wsrep_local_state 4,
    // wsrep_ready ON: a donor, a joiner, a desynced node) is closed and the next tried.
    bool galera_check = false;
    // Galera: SET SESSION wsrep_sync_wait = N after connecting (1: causal reads); -1 = leave it.
    int wsrep_sync_wait = -1;

    // mysql://user:password@host:port/database?key=value&...
    //   host: name, IPv4, [IPv6], or a percent-encoded unix socket path (%2Ftmp%2Fs.sock);
    //   several: host1:port1,host2:port2,host3 (into `hosts`)
    //   keys: ssl-mode (disabled|preferred|required|verify-ca|verify-identity), ssl-ca,
    //   ssl-capath, ssl-cert, ssl-key, tls-min-version (1.2|1.3), socket, host-address, charset, connect-timeout, read-timeout, write-timeout, cancel-timeout
    //   (seconds, decimals allowed), multi-statements (0/1), deprecate-eof (0/1),
    //   compress (0/1), compression-level (1..9), statement-cache-size,
    //   pipeline-spin-us, read-coalescing-us (microseconds), get-server-public-key (0/1),
    //   server-public-key-pem (the server's RSA key, PEM text), program-name (the
    //   program_name connection attribute), found-rows (0/1),
    //   max-packet-size (bytes), host-mode (sequential|load-balance), host-backoff (seconds),
    //   galera-check (0/1), wsrep-sync-wait (0..15), keepalive (0/1), keepalive-idle,
    //   keepalive-interval (whole seconds, 1..32767), keepalive-count (1..127).
    // Throws ambisql::error (errc::bad_url) on anything it does not understand.
    static config from_url(std::string_view url);
    // The same, over `base`: what the URL leaves out keeps base's value.
    static config from_url(std::string_view url, config base);
};

// Settings from several sources, as a program that takes them from its users has them (the
// Python module: an option file, a URL, keyword arguments). Each source sets only what it
// names: a setting no source names keeps the base's value, whatever the sources' order.
// Sources are given lowest precedence first, and a later one overrides an earlier one
// setting by setting, with one exception, TLS, where the rule is "never weaker than
// asked": the strongest ssl-mode any source asks for wins, and "disabled" (asked by a
// source that means it: an ssl-mode or a skip-ssl) is an error when another source
// requires TLS. Throws ambisql::error: errc::bad_config naming the setting and its source,
// errc::bad_url for a URL, errc::option_file_unreadable.
class config_builder {
public:
    explicit config_builder(config base = {});
    // A MySQL option file's [group] (client unless named), as the mysql client and PyMySQL
    // read it: user, password, host, port, socket, database, default-character-set,
    // bind-address, connect-timeout, ssl-mode, ssl-ca, ssl-capath, ssl-cert, ssl-key,
    // ssl-verify-server-cert and skip-ssl ('_' read as '-', quotes taken off values, other
    // options and !include lines ignored). A CA file or directory there asks for
    // verify-identity, as PyMySQL has it; ssl-cipher is refused rather than ignored (the
    // core keeps OpenSSL's default ciphers for TLS 1.2+). The file must be readable.
    config_builder& option_file(const std::string& path, std::string_view group = "client");
    // The URL's settings (config::from_url's syntax).
    config_builder& url(std::string_view url);
    // One setting by its URL name (ssl-mode, read-timeout, ...; '_' read as '-'), plus
    // host, port, user, password, database and hosts (a host list as in a URL); `source`
    // names where it came from in errors ("keyword argument read_timeout").
    config_builder& set(std::string_view key, std::string_view value, std::string_view source = "setting");
    // The settings so far, for what has no text form (local_infile_handler,
    // connect_attributes, local_infile_allow).
    config& settings() noexcept { return c_; }
    // The result, the TLS rule applied.
    config build() const;

private:
    void ask(const std::string& key, const std::string& value, std::string_view source);

    config c_;
    bool tls_asked_ = false;  // a source named an ssl-mode other than disabled
    ssl_mode strongest_ = ssl_mode::disabled;
    std::string strongest_by_, disabled_by_;
};

}  // namespace ambisql
