#pragma once
// Session state the server's tracker does not report.
//
// With session_track_state_change on, MariaDB (10.11, checked statement by statement)
// reports session variables, user variables set by SET, temporary tables, SQL PREPARE,
// the schema and the like, but says nothing about: table locks (LOCK TABLES, FLUSH TABLES
// ... WITH READ LOCK, BACKUP STAGE/LOCK), named locks (GET_LOCK, directly or inside a
// stored function or procedure), open HANDLERs, user variables assigned inside a
// statement (SELECT @v := 1, SELECT ... INTO @v), LAST_INSERT_ID (an auto-increment
// insert or LAST_INSERT_ID(n)), the characteristics of the next transaction (SET
// TRANSACTION ISOLATION LEVEL ...), an XA transaction's state after XA END, sequences'
// last values and SQL_CALC_FOUND_ROWS. A pool may hand a connection on without a reset
// only when nothing of that kind can have happened, so the session flags any statement
// whose text could do such a thing.
#include <string_view>

namespace ambisql::proto {

// true unless `sql` certainly leaves no such state: it names one of those statements or
// functions, a user variable, a stored routine (CALL, or a function that is not built
// in: stored code may take named locks or set variables unseen), is DDL (CREATE, ALTER),
// or cannot be read with certainty (an unterminated comment or literal). Literals and
// comments are skipped, executable comments (/*! ... */) read as code. Errs on the side of
// true: a false alarm costs a reset, a miss would leak state to another borrower. What no
// statement's text shows (a trigger or a view calling such a function) is not seen.
// `backslash_escapes`: whether '\\' escapes in literals (not under NO_BACKSLASH_ESCAPES).
bool may_leave_untracked_state(std::string_view sql, bool backslash_escapes) noexcept;

}  // namespace ambisql::proto
