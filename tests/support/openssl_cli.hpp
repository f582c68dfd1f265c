#pragma once
// Independent computations through the openssl command-line tool, for checking the
// library's own crypto against something it does not share code with.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace ambisql::test {

inline std::string temp_path(const char* tag) {
    static int n = 0;
    return "/tmp/ambisql-test-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(n++);
}

inline void write_file(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

inline std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw std::runtime_error("popen failed: " + cmd);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (::pclose(p) != 0) throw std::runtime_error("command failed: " + cmd);
    return out;
}

// openssl dgst -<alg> -binary over `data`.
inline std::string openssl_digest(const char* alg, const std::string& data) {
    std::string in = temp_path("dgst");
    write_file(in, data);
    std::string out = run(std::string("openssl dgst -") + alg + " -binary " + in);
    std::remove(in.c_str());
    return out;
}

inline std::string xor_bytes(const std::string& a, const std::string& b) {
    std::string out(a.size(), '\0');
    for (std::size_t i = 0; i < a.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i % b.size()]);
    return out;
}

}  // namespace ambisql::test
