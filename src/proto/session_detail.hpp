#pragma once
// What the session's operation files share, and nobody else needs.
#include <string>
#include <string_view>

namespace ambisql::proto {

inline constexpr const char* unbindable = "an identifier cannot be bound to a statement parameter";

inline std::string param_count_message(std::size_t params, std::size_t given) {
    return "the statement has " + std::to_string(params) + " parameters, " + std::to_string(given) + " values given";
}

// The file name of a `LOAD DATA [LOW_PRIORITY | CONCURRENT] LOCAL INFILE 'name'`
// statement at the start of sql (after blanks); false when sql is no such statement.
bool load_data_local_file(std::string_view sql, std::string& file);

}  // namespace ambisql::proto
