// may_leave_untracked_state(): a conservative reading of a statement's text (see
// untracked.hpp). One pass: literals and comments skipped, words upper-cased and looked
// up, and every '(' checked for what stands before it.
#include "proto/untracked.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

namespace ambisql::proto {

namespace {

// Words that by themselves may leave state behind.
constexpr std::string_view state_words[] = {
    "BACKUP",          // BACKUP STAGE, BACKUP LOCK
    "CALL",            // a stored procedure: anything
    "GET_LOCK",        // a named lock
    "HANDLER",         // an open table handler
    "LAST_INSERT_ID",  // LAST_INSERT_ID(n) sets it (an insert's is seen in its OK)
    "LASTVAL", "LOCK",  // LOCK TABLES, ... WITH READ LOCK, LOCK IN SHARE MODE (harmless, flagged)
    "NEXT",             // NEXT VALUE FOR a sequence: its last value
    "NEXTVAL", "SETVAL", "SQL_CALC_FOUND_ROWS",
    "XA",  // an XA transaction's state
};

// Words that may stand before '(' without calling a stored function: keywords, type
// names, and functions built into the server (a stored function cannot take a built-in
// function's name unqualified).
constexpr std::string_view no_call_words[] = {
    // keywords before a parenthesis
    "AGAINST", "ALL", "AND", "ANY", "AS", "BETWEEN", "BY", "CASE", "CHECK", "DISTINCT", "DIV", "ELSE", "ESCAPE",
    "EXCEPT", "EXISTS", "FOR", "FORCE", "FROM", "HAVING", "IGNORE", "IN", "INDEX", "INTERSECT", "IS", "JOIN", "KEY",
    "LATERAL", "LIKE", "LIMIT", "MATCH", "NOT", "OFFSET", "ON", "OR", "OVER", "PARTITION", "RECURSIVE", "REGEXP",
    "RETURNING", "RLIKE", "ROW", "SELECT", "SET", "SOME", "THEN", "UNION", "USE", "USING", "VALUE", "VALUES", "WHEN",
    "WHERE", "WINDOW", "WITH", "XOR",
    // types (CAST, CONVERT)
    "BIGINT", "BINARY", "BIT", "CHAR", "CHARACTER", "DATE", "DATETIME", "DEC", "DECIMAL", "DOUBLE", "ENUM", "FLOAT",
    "INT", "INTEGER", "JSON", "MEDIUMINT", "NCHAR", "NUMERIC", "REAL", "SIGNED", "SMALLINT", "TIME", "TIMESTAMP",
    "TINYINT", "UNSIGNED", "VARBINARY", "VARCHAR", "YEAR",
    // built-in functions
    "ABS", "ACOS", "ADDDATE", "ADDTIME", "AES_DECRYPT", "AES_ENCRYPT", "ASCII", "ASIN", "ATAN", "ATAN2", "AVG", "BIN",
    "BIT_AND", "BIT_COUNT", "BIT_LENGTH", "BIT_OR", "BIT_XOR", "CAST", "CEIL", "CEILING", "CHARSET", "CHAR_LENGTH",
    "CHARACTER_LENGTH", "COALESCE", "COERCIBILITY", "COLLATION", "COLUMN_CHECK", "COLUMN_CREATE", "COLUMN_EXISTS",
    "COLUMN_GET", "COLUMN_JSON", "COLUMN_LIST", "COMPRESS", "CONCAT", "CONCAT_WS", "CONNECTION_ID", "CONV", "CONVERT",
    "CONVERT_TZ", "COS", "COT", "COUNT", "CRC32", "CUME_DIST", "CURDATE", "CURRENT_DATE", "CURRENT_ROLE",
    "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER", "CURTIME", "DATABASE", "DATEDIFF", "DATE_ADD",
    "DATE_FORMAT", "DATE_SUB", "DAY", "DAYNAME", "DAYOFMONTH", "DAYOFWEEK", "DAYOFYEAR", "DEGREES", "DENSE_RANK",
    "ELT", "EXP", "EXPORT_SET", "EXTRACT", "EXTRACTVALUE", "FIELD", "FIND_IN_SET", "FIRST_VALUE", "FLOOR", "FORMAT",
    "FOUND_ROWS", "FROM_BASE64", "FROM_DAYS", "FROM_UNIXTIME", "GET_FORMAT", "GREATEST", "GROUP_CONCAT", "HEX",
    "HOUR", "IF", "IFNULL", "INET6_ATON", "INET6_NTOA", "INET_ATON", "INET_NTOA", "INSERT", "INSTR", "INTERVAL",
    "ISNULL", "IS_FREE_LOCK", "IS_IPV4", "IS_IPV6", "IS_USED_LOCK", "JSON_ARRAY", "JSON_ARRAYAGG",
    "JSON_ARRAY_APPEND", "JSON_ARRAY_INSERT", "JSON_COMPACT", "JSON_CONTAINS", "JSON_CONTAINS_PATH", "JSON_DEPTH",
    "JSON_DETAILED", "JSON_EQUALS", "JSON_EXISTS", "JSON_EXTRACT", "JSON_INSERT", "JSON_KEYS", "JSON_LENGTH",
    "JSON_MERGE", "JSON_MERGE_PATCH", "JSON_MERGE_PRESERVE", "JSON_NORMALIZE", "JSON_OBJECT", "JSON_OBJECTAGG",
    "JSON_OVERLAPS", "JSON_QUERY", "JSON_QUOTE", "JSON_REMOVE", "JSON_REPLACE", "JSON_SEARCH", "JSON_SET",
    "JSON_TABLE", "JSON_TYPE", "JSON_UNQUOTE", "JSON_VALID", "JSON_VALUE", "LAG", "LAST_DAY", "LAST_VALUE", "LCASE",
    "LEAD", "LEAST", "LEFT", "LENGTH", "LN", "LOCALTIME", "LOCALTIMESTAMP", "LOCATE", "LOG", "LOG10", "LOG2", "LOWER",
    "LPAD", "LTRIM", "MAKEDATE", "MAKETIME", "MAKE_SET", "MAX", "MD5", "MEDIAN", "MICROSECOND", "MID", "MIN",
    "MINUTE", "MOD", "MONTH", "MONTHNAME", "NATURAL_SORT_KEY", "NOW", "NTH_VALUE", "NTILE", "NULLIF", "NVL", "NVL2",
    "OCT", "OCTET_LENGTH", "ORD", "PERCENTILE_CONT", "PERCENTILE_DISC", "PERCENT_RANK", "PERIOD_ADD",
    "PERIOD_DIFF", "PI", "POSITION", "POW", "POWER", "QUARTER", "QUOTE", "RADIANS", "RAND", "RANK", "REGEXP_INSTR",
    "REGEXP_REPLACE", "REGEXP_SUBSTR", "RELEASE_ALL_LOCKS", "RELEASE_LOCK", "REPEAT", "REPLACE", "REVERSE", "RIGHT",
    "ROUND", "ROW_COUNT", "ROW_NUMBER", "RPAD", "RTRIM", "SCHEMA", "SECOND", "SEC_TO_TIME", "SESSION_USER", "SHA",
    "SHA1", "SHA2", "SIGN", "SIN", "SLEEP", "SOUNDEX", "SPACE", "SQRT", "STD", "STDDEV", "STDDEV_POP", "STDDEV_SAMP",
    "STRCMP", "STR_TO_DATE", "SUBDATE", "SUBSTR", "SUBSTRING", "SUBSTRING_INDEX", "SUBTIME", "SUM", "SYSDATE",
    "SYSTEM_USER", "SYS_GUID", "TAN", "TIMEDIFF", "TIMESTAMPADD", "TIMESTAMPDIFF", "TIME_FORMAT", "TIME_TO_SEC",
    "TO_BASE64", "TO_CHAR", "TO_DAYS", "TO_SECONDS", "TRIM", "TRUNCATE", "UCASE", "UNCOMPRESS", "UNCOMPRESSED_LENGTH",
    "UNHEX", "UNIX_TIMESTAMP", "UPDATEXML", "UPPER", "USER", "UTC_DATE", "UTC_TIME", "UTC_TIMESTAMP", "UUID",
    "UUID_SHORT", "VARIANCE", "VAR_POP", "VAR_SAMP", "VERSION", "WEEK", "WEEKDAY", "WEEKOFYEAR", "WEIGHT_STRING",
    "YEARWEEK",
};

// Words before a table name whose column list follows in parentheses: INSERT INTO t (a, b).
constexpr std::string_view table_words[] = {"DELAYED", "HIGH_PRIORITY", "IGNORE", "INSERT", "INTO", "LOW_PRIORITY",
                                            "REPLACE"};

// Statements that are DDL: read as possibly stateful (routine bodies, column types).
constexpr std::string_view ddl_words[] = {"ALTER", "CREATE"};

// Sorted once per list (the lists above are grouped for reading, not sorted); the list
// itself is the template's argument, so two lists of one length never share a copy.
template <const auto& List>
bool listed(std::string_view w) {
    static const std::vector<std::string_view> sorted = [] {
        std::vector<std::string_view> v(std::begin(List), std::end(List));
        std::sort(v.begin(), v.end());
        return v;
    }();
    return std::binary_search(sorted.begin(), sorted.end(), w);
}

bool word_char(unsigned char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
           c >= 0x80;
}

bool space(unsigned char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

bool may_leave_untracked_state(std::string_view sql, bool backslash_escapes) noexcept {
    const std::size_t n = sql.size();
    // The word just read (upper-cased; empty when longer than any listed word, or quoted)
    // and what preceded its dotted name: `INTO db.t (`, `SELECT db.f(`.
    std::array<char, 24> cur{}, lead{};
    std::size_t cur_len = 0, lead_len = 0;
    bool last_was_word = false, qualified = false, after_dot = false, at_start = true;
    bool quoted = false;  // the last word was a quoted identifier
    auto view = [](const std::array<char, 24>& a, std::size_t len) { return std::string_view(a.data(), len); };
    for (std::size_t i = 0; i < n;) {
        const unsigned char c = static_cast<unsigned char>(sql[i]);
        if (space(c)) {
            ++i;
            continue;
        }
        if (c == '\'' || c == '"') {  // a literal ("..." may be an identifier: harmless either way)
            std::size_t j = i + 1;
            for (;; ++j) {
                if (j >= n) return true;
                if (sql[j] == '\\' && backslash_escapes) {
                    ++j;
                    continue;
                }
                if (sql[j] == static_cast<char>(c)) {
                    if (j + 1 < n && sql[j + 1] == static_cast<char>(c)) {
                        ++j;
                        continue;
                    }
                    break;
                }
            }
            i = j + 1;
            // "name" may be an identifier (ANSI_QUOTES): before '(' it counts as a call.
            last_was_word = quoted = c == '"';
            cur_len = 0;
            after_dot = qualified = false;
            continue;
        }
        if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
            std::size_t j = i + 2;
            if (j < n && (sql[j] == '!' || (sql[j] == 'M' && j + 1 < n && sql[j + 1] == '!'))) {  // executable
                j += sql[j] == '!' ? 1 : 2;
                while (j < n && sql[j] >= '0' && sql[j] <= '9') ++j;
                i = j;
                continue;
            }
            auto end = sql.find("*/", j);
            if (end == std::string_view::npos) return true;
            i = end + 2;
            continue;
        }
        if (c == '*' && i + 1 < n && sql[i + 1] == '/') {  // an executable comment's end
            i += 2;
            continue;
        }
        if (c == '#' || (c == '-' && i + 2 < n && sql[i + 1] == '-' && static_cast<unsigned char>(sql[i + 2]) <= 0x20)) {
            auto end = sql.find('\n', i);
            if (end == std::string_view::npos) return false;  // (nothing after it)
            i = end + 1;
            continue;
        }
        if (c == '@') {
            if (i + 1 < n && sql[i + 1] == '@') {  // a system variable: read, or SET (reported)
                i += 2;
                while (i < n && (word_char(sql[i]) || sql[i] == '.')) ++i;
                last_was_word = after_dot = false;
                continue;
            }
            return true;  // a user variable
        }
        if (c == '`') {  // a quoted identifier
            auto end = sql.find('`', i + 1);
            while (end != std::string_view::npos && end + 1 < n && sql[end + 1] == '`') end = sql.find('`', end + 2);
            if (end == std::string_view::npos) return true;
            if (!after_dot) {
                lead = cur;
                lead_len = last_was_word ? cur_len : 0;
            }
            qualified = after_dot;
            cur_len = 0;
            quoted = true;
            last_was_word = true;
            after_dot = false;
            at_start = false;
            i = end + 1;
            continue;
        }
        if (word_char(c)) {
            std::size_t j = i;
            while (j < n && word_char(sql[j])) ++j;
            const std::size_t len = j - i;
            if (!after_dot) {  // a new name begins: remember what stood before it
                lead = cur;
                lead_len = last_was_word ? cur_len : 0;
            }
            qualified = after_dot;
            quoted = false;
            cur_len = len < cur.size() ? len : 0;
            for (std::size_t k = 0; k < cur_len; ++k) {
                char ch = sql[i + k];
                cur[k] = ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch;
            }
            const std::string_view w = view(cur, cur_len);
            if (!qualified && cur_len != 0) {
                if (listed<state_words>(w)) return true;
                if (at_start && listed<ddl_words>(w)) return true;
                // SET [SESSION|GLOBAL] TRANSACTION ...: the next transaction's characteristics
                if (w == "TRANSACTION" && (view(lead, lead_len) == "SET" || view(lead, lead_len) == "SESSION"))
                    return true;
            }
            at_start = false;
            last_was_word = true;
            after_dot = false;
            i = j;
            continue;
        }
        if (c == '.') {
            after_dot = last_was_word;
            ++i;
            continue;
        }
        if (c == '(') {
            if (last_was_word) {
                const std::string_view w = view(cur, cur_len), before = view(lead, lead_len);
                const bool column_list = lead_len != 0 && listed<table_words>(before);
                if (!column_list && (qualified || quoted || cur_len == 0 || !listed<no_call_words>(w)))
                    return true;  // a stored function, or one not known to be built in
            }
            last_was_word = after_dot = false;
            ++i;
            continue;
        }
        if (c == ';') at_start = true;
        last_was_word = after_dot = false;
        ++i;
    }
    return false;
}

}  // namespace ambisql::proto
