#include "proto/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace ambisql::proto {

namespace {

std::string openssl_errors(std::string_view what) {
    std::string s(what);
    unsigned long e;
    char buf[256];
    bool first = true;
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        s += first ? ": " : "; ";
        s += buf;
        first = false;
    }
    return s;
}

}  // namespace

tls_channel::~tls_channel() { reset(); }

void tls_channel::reset() {
    if (ssl_) SSL_free(ssl_);  // frees both BIOs
    if (ctx_) SSL_CTX_free(ctx_);
    ssl_ = nullptr;
    ctx_ = nullptr;
    in_ = out_ = nullptr;
}

bool tls_channel::start(const config& cfg, std::string_view host, std::string& err) {
    reset();
    ERR_clear_error();
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) {
        err = openssl_errors("TLS context");
        return false;
    }
    if (cfg.tls_min_version != 0x0303 && cfg.tls_min_version != 0x0304) {
        err = "tls_min_version must be 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3)";
        return false;
    }
    SSL_CTX_set_min_proto_version(ctx_, cfg.tls_min_version == 0x0304 ? TLS1_3_VERSION : TLS1_2_VERSION);
    const bool verify = cfg.ssl == ssl_mode::verify_ca || cfg.ssl == ssl_mode::verify_identity;
    if (verify) {
        if (cfg.ssl_ca.empty() && cfg.ssl_capath.empty() && cfg.ssl_ca_pem.empty()) {
            // The system's trust store (OpenSSL's default file and directory, which
            // SSL_CERT_FILE / SSL_CERT_DIR override).
            if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
                err = openssl_errors("cannot load the system's trusted CA certificates");
                return false;
            }
        }
        if ((!cfg.ssl_ca.empty() || !cfg.ssl_capath.empty()) &&
            SSL_CTX_load_verify_locations(ctx_, cfg.ssl_ca.empty() ? nullptr : cfg.ssl_ca.c_str(),
                                          cfg.ssl_capath.empty() ? nullptr : cfg.ssl_capath.c_str()) != 1) {
            err = openssl_errors("cannot load CA file " + cfg.ssl_ca + (cfg.ssl_capath.empty() ? "" : " or directory ") +
                                 cfg.ssl_capath);
            return false;
        }
        if (!cfg.ssl_ca_pem.empty() && !add_pem_cas(cfg.ssl_ca_pem, err)) return false;
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    }
    if (!cfg.ssl_cert.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx_, cfg.ssl_cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx_, (cfg.ssl_key.empty() ? cfg.ssl_cert : cfg.ssl_key).c_str(),
                                        SSL_FILETYPE_PEM) != 1) {
            err = openssl_errors("cannot load client certificate");
            return false;
        }
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    if (!ssl_ || !in_ || !out_) {
        if (in_) BIO_free(in_);
        if (out_) BIO_free(out_);
        in_ = out_ = nullptr;
        err = openssl_errors("TLS session");
        return false;
    }
    BIO_set_mem_eof_return(in_, -1);  // empty means "more later", not end of stream
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);

    std::string h(host);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    bool ip = !h.empty() && X509_VERIFY_PARAM_set1_ip_asc(param, h.c_str()) == 1;
    if (!ip && !h.empty()) SSL_set_tlsext_host_name(ssl_, h.c_str());
    if (cfg.ssl == ssl_mode::verify_identity) {
        if (h.empty()) {
            err = "verify-identity needs a host name";
            return false;
        }
        if (!ip && SSL_set1_host(ssl_, h.c_str()) != 1) {
            err = openssl_errors("cannot set the expected host name");
            return false;
        }
    } else if (ip) {
        X509_VERIFY_PARAM_set1_ip(param, nullptr, 0);  // only verify_identity checks names
    }
    ERR_clear_error();
    return true;
}

// Every certificate of `pem` into the context's trust store; one at least.
bool tls_channel::add_pem_cas(const std::string& pem, std::string& err) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (!bio) {
        err = openssl_errors("TLS: CA certificates");
        return false;
    }
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
    int added = 0;
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        const bool ok = X509_STORE_add_cert(store, cert) == 1;
        X509_free(cert);
        if (!ok) {
            BIO_free(bio);
            err = openssl_errors("TLS: cannot add a CA certificate");
            return false;
        }
        ++added;
    }
    BIO_free(bio);
    ERR_clear_error();  // (the end of the PEM text)
    if (added == 0) {
        err = "TLS: no CA certificate in the PEM text given (ssl_ca_pem)";
        return false;
    }
    return true;
}

tls_channel::status tls_channel::handshake(std::string& err) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) return status::ok;
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return status::want_read;
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) {
        err = std::string("TLS handshake failed: certificate verification: ") +
              X509_verify_cert_error_string(v);
        ERR_clear_error();
    } else {
        err = openssl_errors("TLS handshake failed");
    }
    return status::error;
}

void tls_channel::feed(const std::uint8_t* p, std::size_t n) {
    if (n) BIO_write(in_, p, static_cast<int>(n));
}

tls_channel::status tls_channel::read(std::uint8_t* dst, std::size_t cap, std::size_t& n, std::string& err) {
    n = 0;
    ERR_clear_error();
    int want = cap > 0x40000000 ? 0x40000000 : static_cast<int>(cap);
    int r = SSL_read(ssl_, dst, want);
    if (r > 0) {
        n = static_cast<std::size_t>(r);
        return status::ok;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return status::want_read;
    if (e == SSL_ERROR_ZERO_RETURN) return status::closed;
    err = openssl_errors("TLS read failed");
    return status::error;
}

bool tls_channel::write(const std::uint8_t* p, std::size_t n, std::string& err) {
    ERR_clear_error();
    while (n > 0) {
        int chunk = n > 0x40000000 ? 0x40000000 : static_cast<int>(n);
        int r = SSL_write(ssl_, p, chunk);
        if (r <= 0) {
            err = openssl_errors("TLS write failed");
            return false;
        }
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

void tls_channel::drain(std::vector<std::uint8_t>& out) {
    std::size_t pending = BIO_ctrl_pending(out_);
    if (!pending) return;
    std::size_t at = out.size();
    out.resize(at + pending);
    int r = BIO_read(out_, out.data() + at, static_cast<int>(pending));
    out.resize(at + (r > 0 ? static_cast<std::size_t>(r) : 0));
}

std::string tls_channel::version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

}  // namespace ambisql::proto
