#include "proto/auth.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include <array>
#include <cstdint>
#include <memory>

namespace ambisql::proto {

namespace {

const unsigned char* u(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

template <std::size_t N>
std::string_view sv(const std::array<unsigned char, N>& a) {
    return {reinterpret_cast<const char*>(a.data()), N};
}

template <std::size_t N>
std::array<unsigned char, N> digest(const EVP_MD* md, std::string_view a, std::string_view b) {
    std::array<unsigned char, N> out{};
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> c(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    unsigned int n = 0;
    if (!c || EVP_DigestInit_ex(c.get(), md, nullptr) != 1 || EVP_DigestUpdate(c.get(), a.data(), a.size()) != 1 ||
        EVP_DigestUpdate(c.get(), b.data(), b.size()) != 1 || EVP_DigestFinal_ex(c.get(), out.data(), &n) != 1)
        out.fill(0);
    return out;
}
std::array<unsigned char, 20> sha1(std::string_view a, std::string_view b = {}) { return digest<20>(EVP_sha1(), a, b); }
std::array<unsigned char, 32> sha256(std::string_view a, std::string_view b = {}) {
    return digest<32>(EVP_sha256(), a, b);
}

}  // namespace

std::string native_password_response(std::string_view password, std::string_view scramble) {
    if (password.empty()) return {};
    auto h1 = sha1(password);
    auto h2 = sha1(sv(h1));
    auto h3 = sha1(scramble.substr(0, 20), sv(h2));
    std::string out(20, '\0');
    for (std::size_t i = 0; i < 20; ++i) out[i] = static_cast<char>(h1[i] ^ h3[i]);
    return out;
}

std::string caching_sha2_response(std::string_view password, std::string_view nonce) {
    if (password.empty()) return {};
    auto h1 = sha256(password);
    auto h2 = sha256(sv(h1));
    auto h3 = sha256(sv(h2), nonce.substr(0, 20));
    std::string out(32, '\0');
    for (std::size_t i = 0; i < 32; ++i) out[i] = static_cast<char>(h1[i] ^ h3[i]);
    return out;
}

std::string caching_sha2_rsa_response(std::string_view password, std::string_view scramble,
                                      std::string_view pem) {
    if (scramble.empty()) return {};
    std::string plain(password);
    plain.push_back('\0');
    for (std::size_t i = 0; i < plain.size(); ++i) plain[i] ^= scramble[i % scramble.size()];

    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    if (!bio) return {};
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                            EVP_PKEY_free);
    if (!key) return {};
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(key.get(), nullptr),
                                                                    EVP_PKEY_CTX_free);
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0)
        return {};
    std::size_t len = 0;
    if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, u(plain), plain.size()) <= 0) return {};
    std::string out(len, '\0');
    if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, u(plain), plain.size()) <= 0)
        return {};
    out.resize(len);
    return out;
}

std::string ed25519_response(std::string_view password, std::string_view message) {
    static const bool ready = sodium_init() >= 0;
    if (!ready) return {};
    // Expanded secret: az = SHA-512(password), clamped; a = az[0..32) is the scalar and
    // az[32..64) the nonce prefix, exactly as Ed25519 does with SHA-512(seed).
    unsigned char az[64];
    crypto_hash_sha512(az, u(password), password.size());
    az[0] &= 248;
    az[31] &= 63;
    az[31] |= 64;

    unsigned char a[crypto_core_ed25519_SCALARBYTES];
    {
        unsigned char wide[64] = {};
        std::copy(az, az + 32, wide);
        crypto_core_ed25519_scalar_reduce(a, wide);
    }
    unsigned char A[32];
    if (crypto_scalarmult_ed25519_base_noclamp(A, a) != 0) return {};

    // r = SHA-512(az[32..64) || M) mod L; R = r·B
    unsigned char nonce_hash[64], r[32], R[32];
    crypto_hash_sha512_state st;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, az + 32, 32);
    crypto_hash_sha512_update(&st, u(message), message.size());
    crypto_hash_sha512_final(&st, nonce_hash);
    crypto_core_ed25519_scalar_reduce(r, nonce_hash);
    if (crypto_scalarmult_ed25519_base_noclamp(R, r) != 0) return {};

    // k = SHA-512(R || A || M) mod L; S = k·a + r mod L
    unsigned char k_hash[64], k[32], ka[32], S[32];
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, R, 32);
    crypto_hash_sha512_update(&st, A, 32);
    crypto_hash_sha512_update(&st, u(message), message.size());
    crypto_hash_sha512_final(&st, k_hash);
    crypto_core_ed25519_scalar_reduce(k, k_hash);
    crypto_core_ed25519_scalar_mul(ka, k, a);
    crypto_core_ed25519_scalar_add(S, ka, r);

    std::string sig(64, '\0');
    std::copy(R, R + 32, sig.begin());
    std::copy(S, S + 32, sig.begin() + 32);
    sodium_memzero(az, sizeof az);
    sodium_memzero(a, sizeof a);
    sodium_memzero(r, sizeof r);
    return sig;
}

}  // namespace ambisql::proto
