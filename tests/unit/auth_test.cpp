#include <gtest/gtest.h>
#include <sodium.h>

#include "openssl_cli.hpp"
#include "proto/auth.hpp"

using namespace ambisql;
using namespace ambisql::test;

TEST(Auth, NativePasswordMatchesOpensslDigests) {
    const std::string pw = "s3cret!", scramble = "0123456789abcdefghij";
    std::string h1 = openssl_digest("sha1", pw);
    std::string h2 = openssl_digest("sha1", h1);
    std::string h3 = openssl_digest("sha1", scramble + h2);
    EXPECT_EQ(proto::native_password_response(pw, scramble), xor_bytes(h1, h3));
    EXPECT_EQ(proto::native_password_response("", scramble), "") << "empty password sends nothing";
}

TEST(Auth, CachingSha2MatchesOpensslDigests) {
    const std::string pw = "pässword", nonce = "ABCDEFGHIJKLMNOPQRST";
    std::string h1 = openssl_digest("sha256", pw);
    std::string h2 = openssl_digest("sha256", h1);
    std::string h3 = openssl_digest("sha256", h2 + nonce);
    EXPECT_EQ(proto::caching_sha2_response(pw, nonce), xor_bytes(h1, h3));
    EXPECT_EQ(proto::caching_sha2_response("", nonce), "");
}

TEST(Auth, CachingSha2RsaDecryptsWithOpenssl) {
    std::string key = temp_path("key"), pub = temp_path("pub"), enc = temp_path("enc");
    run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + key + " 2>/dev/null");
    run("openssl pkey -in " + key + " -pubout -out " + pub);
    const std::string pw = "full-auth-pw", scramble = "abcdefghijklmnopqrst";
    std::string ct = proto::caching_sha2_rsa_response(pw, scramble, read_file(pub));
    ASSERT_EQ(ct.size(), 256u);
    write_file(enc, ct);
    std::string plain = run("openssl pkeyutl -decrypt -inkey " + key + " -pkeyopt rsa_padding_mode:oaep -in " + enc);
    EXPECT_EQ(plain, xor_bytes(pw + std::string(1, '\0'), scramble));
    EXPECT_EQ(proto::caching_sha2_rsa_response(pw, scramble, "not a key"), "");
    for (auto& f : {key, pub, enc}) std::remove(f.c_str());
}

TEST(Auth, Ed25519SignatureVerifiesWithTheDerivedPublicKey) {
    ASSERT_GE(sodium_init(), 0);
    const std::string pw = "ed25519 password", msg = "0123456789abcdef0123456789ABCDEF";
    std::string sig = proto::ed25519_response(pw, msg);
    ASSERT_EQ(sig.size(), 64u);
    // The public key from the same secret, derived independently: SHA-512 by openssl,
    // the clamped scalar multiplication by libsodium's clamping API.
    std::string az = openssl_digest("sha512", pw);
    unsigned char pk[32];
    ASSERT_EQ(crypto_scalarmult_ed25519_base(pk, reinterpret_cast<const unsigned char*>(az.data())), 0);
    EXPECT_EQ(crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                          reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), pk),
              0);
    // A different message must not verify.
    std::string other = msg;
    other[0] ^= 1;
    EXPECT_NE(crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                          reinterpret_cast<const unsigned char*>(other.data()), other.size(), pk),
              0);
    EXPECT_EQ(proto::ed25519_response(pw, msg), sig) << "Ed25519 signatures are deterministic";
}
