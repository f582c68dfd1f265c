// may_leave_untracked_state(): the statements that may leave session state the server's
// tracker does not report, and the everyday ones that certainly do not (which the pool
// then hands on without a reset).
#include <gtest/gtest.h>

#include "proto/untracked.hpp"

namespace ambisql::proto {
namespace {

bool flagged(std::string_view sql) { return may_leave_untracked_state(sql, true); }

TEST(Untracked, StatementsThatMayLeaveUnreportedStateAreFlagged) {
    for (const char* sql : {
             "LOCK TABLES t WRITE", "lock table t read", "FLUSH TABLES t WITH READ LOCK", "BACKUP STAGE START",
             "DO GET_LOCK('x', 0)", "SELECT get_lock('x', 0) FROM DUAL", "SELECT 1, GET_LOCK ('x', 0)",
             "HANDLER t OPEN", "SELECT @v := 5", "SELECT 1 INTO @v", "SET @v = 1", "SELECT @`v`",
             "SELECT LAST_INSERT_ID(42)", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
             "SET SESSION TRANSACTION READ ONLY", "XA START 'x'", "xa end 'x'", "CALL p()", "call db.p",
             "SELECT f()", "SELECT f(1) FROM t", "SELECT db.f()", "SELECT `f`()", "SELECT \"f\"()",
             "SELECT NEXTVAL(s)", "SELECT NEXT VALUE FOR s", "SELECT SQL_CALC_FOUND_ROWS * FROM t",
             "CREATE TABLE t (a INT)", "create function f() returns int return 1", "ALTER TABLE t ADD c INT",
             "SELECT 1; DO GET_LOCK('x', 0)", "SELECT 1; CREATE TABLE t (a INT)",
             "SELECT /*! GET_LOCK('x', 0) */", "SELECT /*M!100000 GET_LOCK('x', 0) */",
             "SELECT 'unterminated", "SELECT 1 /* unterminated", "SELECT `unterminated",
             "SELECT a_very_long_function_name_of_somebody(1)", "INSERT INTO t (a) VALUES (f(1))",
             "SELECT * FROM t WHERE a = 1 LOCK IN SHARE MODE",  // (harmless, but flagged: costs a reset)
         })
        EXPECT_TRUE(flagged(sql)) << sql;
}

TEST(Untracked, EverydayStatementsAreNot) {
    for (const char* sql : {
             "SELECT 1", "SELECT c FROM sbtest1 WHERE id = 42", "select count(*) from t",
             "SELECT a, COUNT(*), MAX(b) FROM t GROUP BY a HAVING COUNT(*) > 1 ORDER BY a LIMIT 10",
             "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')", "INSERT INTO db.t (a) VALUES (?)",
             "INSERT t (a) VALUES (1)", "INSERT IGNORE INTO t (a) VALUES (1)", "REPLACE INTO t (a) VALUES (1)",
             "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)",
             "UPDATE t SET a = a + 1 WHERE id IN (1, 2, 3)", "DELETE FROM t WHERE id = 7",
             "SELECT * FROM t WHERE id = 1 FOR UPDATE", "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK",
             "SELECT users.id AS users_id FROM users WHERE users.id = %s",
             "SELECT anon_1.x FROM (SELECT x FROM t) AS anon_1", "SELECT CAST(a AS DECIMAL(10, 2)) FROM t",
             "SELECT CONVERT(a USING utf8mb4), CONCAT(a, 'b'), COALESCE(a, 0), IFNULL(a, NOW())",
             "SELECT 'GET_LOCK(' FROM t", "SELECT \"LOCK TABLES\"", "SELECT 'it''s @v', 'a\\'b @v'",
             "SELECT 1 -- GET_LOCK('x', 0)\n", "SELECT 1 # LOCK\n", "SELECT 1 /* CALL p() */",
             "SELECT @@session.sql_mode, @@autocommit", "SET @@session.sql_mode = 'ANSI'", "SET NAMES utf8mb4",
             "SELECT x FROM t JOIN u USING (id) WHERE EXISTS (SELECT 1 FROM v)",
             "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t",
             "SELECT JSON_EXTRACT(doc, '$.a'), DATE_FORMAT(NOW(), '%Y') FROM t", "SELECT RELEASE_LOCK('x')",
             "SELECT IS_USED_LOCK('x'), IS_FREE_LOCK('x')", "SHOW VARIABLES LIKE 'sql_mode'", "SELECT DATABASE()",
             "SELECT 1 -- trailing comment", "",
         })
        EXPECT_FALSE(flagged(sql)) << sql;
}

TEST(Untracked, BackslashesEscapeOnlyWhereTheServerSaysSo) {
    // Under NO_BACKSLASH_ESCAPES, 'a\' is a whole literal: what follows it is code.
    constexpr std::string_view sql = "SELECT 'a\\', GET_LOCK(', ''";
    EXPECT_TRUE(may_leave_untracked_state(sql, false));
    EXPECT_FALSE(may_leave_untracked_state(sql, true));  // one literal, then an empty one
}

}  // namespace
}  // namespace ambisql::proto
