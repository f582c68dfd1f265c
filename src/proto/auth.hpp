#pragma once
// Authentication plugin computations. No I/O: bytes in, bytes out.
#include <string>
#include <string_view>

namespace ambisql::proto {

// mysql_native_password: SHA1(pw) XOR SHA1(scramble || SHA1(SHA1(pw))); empty for "".
std::string native_password_response(std::string_view password, std::string_view scramble);

// caching_sha2_password fast path:
// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce); empty for "".
std::string caching_sha2_response(std::string_view password, std::string_view nonce);

// caching_sha2_password full authentication without TLS: RSA-OAEP (SHA-1) with the
// server's PEM public key of (password + NUL) XOR scramble. Empty on failure.
std::string caching_sha2_rsa_response(std::string_view password, std::string_view scramble,
                                      std::string_view public_key_pem);

// MariaDB client_ed25519: an Ed25519 signature of `message` where the expanded secret
// is SHA-512(password). Returns the 64-byte signature, empty on failure.
std::string ed25519_response(std::string_view password, std::string_view message);

}  // namespace ambisql::proto
