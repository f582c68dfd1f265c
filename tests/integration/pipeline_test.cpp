// Pipelines: one write, responses in order, each stage with its own result or error.
#include <sys/resource.h>

#include "common.hpp"

using namespace ambisql;
using namespace ambisql::test;

TEST(Pipeline, StagesOfEveryKindWithAFailingMiddleStage) {
    connection c(unix_config());
    std::string t = unique_table("pipe");
    c.query("CREATE TEMPORARY TABLE " + t + " (id INT PRIMARY KEY, v VARCHAR(20))");
    pipeline p;
    auto ins = p.query("INSERT INTO " + t + " VALUES (?, ?), (?, ?)", 1, "one", 2, "it's");
    auto bad = p.query("SELECT * FROM no_such_table_pipe");
    auto dup = p.execute("INSERT INTO " + t + " VALUES (?, ?)", 1, "dup");
    auto sel = p.execute("SELECT v FROM " + t + " WHERE id = ?", 2);
    auto prep = p.prepare("SELECT ? + ?");
    auto multi = p.query("SELECT 1; SELECT 2, 3");
    auto ping = p.ping();
    auto mismatch = p.execute(statement{12345, 2, 0}, 1);  // wrong count: refused, nothing sent
    auto last = p.execute("SELECT COUNT(*) FROM " + t);
    c.run(p);
    ASSERT_EQ(p.size(), 9u);
    EXPECT_TRUE(p[ins].ok());
    EXPECT_EQ(p[ins].result().affected_rows(), 2u);
    EXPECT_FALSE(p[bad].ok());
    EXPECT_EQ(p[bad].error().server_code, 1146);
    EXPECT_EQ(p[dup].error().server_code, 1062);
    ASSERT_TRUE(p[sel].ok()) << p[sel].error().message;
    EXPECT_EQ(p[sel].result().row(0)[0].get_text(), "it's");
    ASSERT_TRUE(p[prep].ok());
    EXPECT_EQ(p[prep].prepared().params, 2);
    ASSERT_TRUE(p[multi].ok());
    EXPECT_EQ(p[multi].result().size(), 2u);
    EXPECT_EQ(p[multi].result()[1].at(0)[1].get_int(), 3);
    EXPECT_TRUE(p[ping].ok());
    EXPECT_EQ(p[mismatch].error().code, make_error_code(errc::placeholder_mismatch));
    ASSERT_TRUE(p[last].ok());
    EXPECT_EQ(p[last].result().row(0)[0].get_int(), 2);
    EXPECT_FALSE(p.all_ok());
    // The connection is in step, and the prepared statement from the pipeline works.
    EXPECT_EQ(c.execute(p[prep].prepared(), 40, 2).row(0)[0].get_int(), 42);
    c.close_statement(p[prep].prepared());
    EXPECT_EQ(c.query("SELECT 'after'").row(0)[0].get_text(), "after");
}

TEST(Pipeline, InterpolatedStagesAfterAnEscapingChangeUseTheNewRules) {
    connection c(tcp_config());
    const std::string tricky = "x\\' OR 1=1 -- ";
    pipeline p;
    auto before = p.query("SELECT ?", tricky);
    auto mode = p.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
    auto after = p.query("SELECT ?", tricky);
    auto names = p.query("SET NAMES gbk");
    auto gbk = p.query("SELECT ?", "\xd6\xd0" + tricky);
    c.run(p);
    ASSERT_TRUE(p[before].ok()) << p[before].error().message;
    EXPECT_EQ(p[before].result().row(0)[0].get_text(), tricky);
    ASSERT_TRUE(p[mode].ok()) << p[mode].error().message;
    ASSERT_TRUE(p[after].ok()) << p[after].error().message;
    EXPECT_EQ(p[after].result().row(0)[0].get_text(), tricky) << "escaped for NO_BACKSLASH_ESCAPES";
    ASSERT_TRUE(p[names].ok());
    ASSERT_TRUE(p[gbk].ok()) << p[gbk].error().message;
    EXPECT_EQ(p[gbk].result().row(0)[0].get_text(), "\xd6\xd0" + tricky) << "escaped for gbk, character by character";
    EXPECT_EQ(c.query("SELECT 'in step'").row(0)[0].get_text(), "in step");
}

TEST(Pipeline, AResetStageForgetsStatementsAndRestoresTheSessionState) {
    connection c(tcp_config());
    pipeline p;
    p.query("SET NAMES latin1");
    auto first = p.execute("SELECT ? + 1", 1);  // prepared before the reset
    p.reset_connection();
    auto again = p.execute("SELECT ? + 1", 2);  // must be prepared again, not "the last one"
    c.run(p);
    ASSERT_TRUE(p.all_ok()) << p[again].error().message;
    EXPECT_EQ(p[first].result().row(0)[0].get_int(), 2);
    EXPECT_EQ(p[again].result().row(0)[0].get_int(), 3);
    EXPECT_EQ(c.character_set(), "utf8mb4") << "the handshake's character set again";
    // Every later execute works: no dead statement ids in the cache.
    EXPECT_EQ(c.execute("SELECT ? + 1", 3).row(0)[0].get_int(), 4);
    pipeline q;
    q.execute("SELECT ? * 2", 5);
    q.reset_connection();
    c.run(q);
    ASSERT_TRUE(q.all_ok());
    EXPECT_EQ(c.execute("SELECT ? * 2", 6).row(0)[0].get_int(), 12);
    EXPECT_EQ(c.query("SELECT ?", "it's").row(0)[0].get_text(), "it's");
}

TEST(Pipeline, SixtyFourPointSelectsAndTheCacheAcrossRuns) {
    config cfg = tcp_config();
    cfg.statement_cache_size = 8;
    connection c(cfg);
    pipeline p;
    for (int round = 0; round < 5; ++round) {
        p.clear();
        for (int i = 0; i < 64; ++i) p.execute("SELECT ? * " + std::to_string(i % 10), round * 100 + i);
        c.run(p);
        ASSERT_TRUE(p.all_ok());
        for (int i = 0; i < 64; ++i) EXPECT_EQ(p[i].result().row(0)[0].get_int(), (round * 100 + i) * (i % 10)) << i;
        EXPECT_LE(c.cached_statements(), 8u);
    }
    c.ping();  // the server has handled everything this connection sent before
    connection probe(tcp_config());
    auto n = probe
                 .query("SELECT COUNT(*) FROM performance_schema.prepared_statements_instances p JOIN "
                        "performance_schema.threads t ON p.OWNER_THREAD_ID = t.THREAD_ID WHERE t.PROCESSLIST_ID = ?",
                        c.connection_id())
                 .row(0)[0]
                 .get_int();
    EXPECT_LE(n, 8);
}

TEST(Pipeline, ResetInThePipelineAndAStageThatBreaksTheConnection) {
    connection c(unix_config());
    c.execute("SELECT ? + 1", 1);  // cached before the pipeline
    pipeline p;
    auto before = p.execute("SELECT ? + 1", 2);
    auto reset = p.reset_connection();
    auto after = p.execute("SELECT ? + 1", 3);  // prepared again: the reset dropped it
    auto db = p.select_db("no_such_database_pipe");
    c.run(p);
    EXPECT_EQ(p[before].result().row(0)[0].get_int(), 3);
    EXPECT_TRUE(p[reset].ok());
    ASSERT_TRUE(p[after].ok()) << p[after].error().message;
    EXPECT_EQ(p[after].result().row(0)[0].get_int(), 4);
    EXPECT_EQ(p[db].error().server_code, 1049);

    connection killer(unix_config());
    pipeline q;
    q.query("SELECT 1");
    auto killed = q.query("KILL CONNECTION " + std::to_string(c.connection_id()));
    auto orphan = q.query("SELECT 2");
    EXPECT_THROW(c.run(q), error);
    EXPECT_FALSE(c.is_open());
    EXPECT_FALSE(q[killed].ok());
    EXPECT_FALSE(q[orphan].ok());
    EXPECT_FALSE(q[orphan].error().connection_usable);
}

namespace {
// Voluntary context switches of the calling thread: each time it slept in the kernel.
long sleeps_of_this_thread() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nvcsw;
}

// Runs 20 stages answered 2 ms apart; returns how often the thread slept meanwhile.
long sleeps_during_slow_pipeline(std::chrono::microseconds spin) {
    config cfg = unix_config();
    cfg.pipeline_spin = spin;
    connection c(cfg);
    pipeline p;
    for (int i = 0; i < 20; ++i) p.query("SELECT SLEEP(0.002), ?", i);
    long before = sleeps_of_this_thread();
    c.run(p);
    long slept = sleeps_of_this_thread() - before;
    EXPECT_TRUE(p.all_ok());
    for (int i = 0; i < 20; ++i) EXPECT_EQ(p[i].result().row(0)[1].get_int(), i);
    return slept;
}
}  // namespace

// A blocking pipeline polls for its next response for up to pipeline_spin before it
// sleeps (saving the server a wake-up per response); the budget bounds the polling.
TEST(Pipeline, ABlockingPipelinePollsForResponsesWithinItsSpinBudget) {
    // Responses 2 ms apart, a 1 s budget: the thread never sleeps while they come.
    EXPECT_LE(sleeps_during_slow_pipeline(std::chrono::seconds(1)), 2);
    // The default budget (50 us) is far shorter than 2 ms: it sleeps for nearly each.
    EXPECT_EQ(config{}.pipeline_spin, std::chrono::microseconds(50));
    EXPECT_GE(sleeps_during_slow_pipeline(config{}.pipeline_spin), 10);
    EXPECT_GE(sleeps_during_slow_pipeline(std::chrono::microseconds(0)), 10);
}
