// Arbitrary bytes as the whole response to a query, buffered or streamed, in odd pieces.
#include "scripted.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ambisql::test::fuzz_query_response(data, size, false);
    return 0;
}
