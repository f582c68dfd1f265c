// Arbitrary bytes as the compressed frames (CLIENT_COMPRESS) answering a query, buffered
// or streamed, in odd pieces: the outer framing layer, zlib, and the packets inside. A
// long statement goes out deflated, a short one stored.
#include "scripted.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ambisql::test::fuzz_query_response(data, size, true);
    return 0;
}
