#pragma once
// TLS for the core: OpenSSL over memory BIOs, so no socket is ever touched here.
// Ciphertext comes in through feed(), goes out through drain(); plaintext moves through
// read() and write().
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ambisql/config.hpp"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct bio_st BIO;

namespace ambisql::proto {

class tls_channel {
public:
    tls_channel() = default;
    ~tls_channel();
    tls_channel(const tls_channel&) = delete;
    tls_channel& operator=(const tls_channel&) = delete;

    // Sets up a client session for `cfg.ssl`; `host` is checked against the certificate
    // for verify_identity. False with `err` set on failure.
    bool start(const config& cfg, std::string_view host, std::string& err);
    bool active() const noexcept { return ssl_ != nullptr; }
    void reset();

    enum class status { ok, want_read, closed, error };
    // One handshake step.
    status handshake(std::string& err);
    // Ciphertext from the network.
    void feed(const std::uint8_t* p, std::size_t n);
    // Plaintext out of the session: bytes read (>0), or a status when none.
    status read(std::uint8_t* dst, std::size_t cap, std::size_t& n, std::string& err);
    // Encrypts all of `p` (memory BIOs never push back).
    bool write(const std::uint8_t* p, std::size_t n, std::string& err);
    // Appends ciphertext waiting to be sent.
    void drain(std::vector<std::uint8_t>& out);
    std::string version() const;

private:
    bool add_pem_cas(const std::string& pem, std::string& err);
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    BIO* in_ = nullptr;   // network -> ssl (owned by ssl_)
    BIO* out_ = nullptr;  // ssl -> network (owned by ssl_)
};

}  // namespace ambisql::proto
