// classify(): the retry rule the pool, transact() and the Python layer share.
#include <gtest/gtest.h>

#include "ambisql/retry.hpp"

namespace ambisql {
namespace {

diagnostics server(std::uint16_t code, bool usable = true) {
    diagnostics d;
    d.kind = error_kind::server;
    d.server_code = code;
    d.code = std::error_code(code, server_category());
    d.connection_usable = usable;
    return d;
}

diagnostics client(errc e, error_kind k = error_kind::client) {
    diagnostics d;
    d.kind = k;
    d.code = make_error_code(e);
    d.connection_usable = false;
    return d;
}

const failure_context nothing_sent{false, false, false};
const failure_context in_trx{true, true, false};
const failure_context committing{true, true, true};
const failure_context autocommit_statement{true, false, false};

TEST(Retry, ServerRefusalsThatKeepNothingAreRetriableWhateverWasSent) {
    for (std::uint16_t code : {1213, 1205, 1047})
        for (const auto& ctx : {nothing_sent, in_trx, committing, autocommit_statement})
            EXPECT_EQ(classify(server(code), ctx), failure_class::retriable) << code;
}

TEST(Retry, AnErrorDuringCommitIsRetriableOnlyFromAGaleraNode) {
    diagnostics d = server(1180);
    EXPECT_EQ(classify(d, committing), failure_class::outcome_unknown) << "no record: not known to be Galera";
    d.sent = {true, true, true, true, false};
    EXPECT_EQ(classify(d), failure_class::outcome_unknown) << "an engine's or binlog's failure mid-commit";
    d.sent.galera = true;
    EXPECT_EQ(classify(d), failure_class::retriable) << "a failed certification keeps nothing";
}

TEST(Retry, WithoutAContextTheConnectionsRecordDecides) {
    diagnostics lost = client(errc::connection_broken, error_kind::network);
    EXPECT_EQ(classify(lost), failure_class::outcome_unknown) << "no record: the cautious reading";
    lost.sent = {true, false, false, false, false};
    EXPECT_EQ(classify(lost), failure_class::retriable) << "nothing of the command went out";
    lost.sent = {true, true, true, false, false};
    EXPECT_EQ(classify(lost), failure_class::retriable) << "an uncommitted transaction dies with it";
    lost.sent = {true, true, true, true, false};
    EXPECT_EQ(classify(lost), failure_class::outcome_unknown) << "COMMIT in flight";
    lost.sent = {true, true, false, false, false};
    EXPECT_EQ(classify(lost), failure_class::outcome_unknown) << "an autocommit statement may have been applied";
}

TEST(Retry, OtherServerErrorsAreFatal) {
    for (std::uint16_t code : {1062, 1452, 1064, 1146, 1045, 1317, 1406})
        EXPECT_EQ(classify(server(code), in_trx), failure_class::fatal) << code;
}

TEST(Retry, ALostConnectionDependsOnWhatWasInFlight) {
    for (const auto& lost : {client(errc::connection_broken, error_kind::network), client(errc::timeout, error_kind::network),
                             client(errc::not_connected), client(errc::connect_failed, error_kind::network),
                             server(1927, false), server(1053, false), server(4031, false)}) {
        EXPECT_EQ(classify(lost, nothing_sent), failure_class::retriable) << lost.to_string();
        EXPECT_EQ(classify(lost, in_trx), failure_class::retriable) << "an uncommitted transaction dies with it";
        EXPECT_EQ(classify(lost, committing), failure_class::outcome_unknown) << lost.to_string();
        EXPECT_EQ(classify(lost, autocommit_statement), failure_class::outcome_unknown) << lost.to_string();
    }
}

TEST(Retry, TlsAuthProtocolAndMisuseAreFatal) {
    EXPECT_EQ(classify(client(errc::tls_failed, error_kind::tls), nothing_sent), failure_class::fatal);
    EXPECT_EQ(classify(server(1045, false), nothing_sent), failure_class::fatal);
    EXPECT_EQ(classify(client(errc::protocol_error, error_kind::protocol), in_trx), failure_class::fatal);
    EXPECT_EQ(classify(client(errc::operation_in_progress), in_trx), failure_class::fatal);
    EXPECT_EQ(classify(client(errc::cancelled), in_trx), failure_class::fatal);
    EXPECT_STREQ(to_string(failure_class::outcome_unknown), "outcome unknown");
}

}  // namespace
}  // namespace ambisql
