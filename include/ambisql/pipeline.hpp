#pragma once
// Pipelines: several commands sent in one write, their responses read in order.
//
//   ambisql::pipeline p;
//   auto upd = p.query("UPDATE t SET v = v + 1 WHERE id = ?", 7);  // each call: a stage index
//   auto sel = p.execute("SELECT v FROM t WHERE id = ?", 7);       // prepared statement
//   p.ping();
//   conn.run(p);                      // one write, then every response in order
//   if (p[sel].ok()) use(p[sel].result());
//   else report(p[sel].error());      // a failing stage leaves the others alone
//
// Every API runs pipelines: connection::run, nb_connection::start_pipeline,
// async_connection::async_run. Results are buffered per stage. A reset_connection stage
// empties the statement cache for the stages after it. On servers other than MariaDB,
// execute(sql, ...) inside a pipeline needs `sql` to be in the statement cache already
// (execute it once outside a pipeline), since its prepare would need a round trip.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ambisql/error.hpp"
#include "ambisql/format.hpp"
#include "ambisql/resultset.hpp"
#include "ambisql/statement.hpp"

namespace ambisql {

namespace detail {
struct pipeline_access;  // the protocol core's access to stages
}

class pipeline {
public:
    enum class kind : std::uint8_t { query, query_args, execute, execute_statement, prepare, ping, reset_connection, select_db };

    class stage {
    public:
        kind type() const noexcept { return kind_; }
        bool ok() const noexcept { return diag_.kind == error_kind::none; }
        const diagnostics& error() const noexcept { return diag_; }
        void check() const {
            if (!ok()) throw ambisql::error(diag_);
        }
        const results& result() const noexcept { return res_; }  // query and execute stages
        const statement& prepared() const noexcept { return st_; }  // prepare stages

    private:
        friend class pipeline;
        friend struct detail::pipeline_access;
        kind kind_ = kind::ping;
        std::string sql_;
        detail::owned_args args_;
        statement st_;
        results res_;
        diagnostics diag_;
    };

    std::size_t query(std::string_view sql) { return add(kind::query, sql); }
    // With `?` placeholders interpolated (escaped for the connection when it runs).
    template <class... Args>
        requires(sizeof...(Args) > 0)
    std::size_t query(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)...};
        return add(kind::query_args, sql, a);
    }
    // Through the statement cache, like connection::execute.
    template <class... Args>
    std::size_t execute(std::string_view sql, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        return add(kind::execute, sql, std::span<const sql_arg>(a, sizeof...(Args)));
    }
    std::size_t execute_args(std::string_view sql, std::span<const sql_arg> args) {
        return add(kind::execute, sql, args);
    }
    template <class... Args>
    std::size_t execute(const statement& st, const Args&... args) {
        const sql_arg a[] = {sql_arg(args)..., sql_arg(nullptr)};
        std::size_t i = add(kind::execute_statement, {}, std::span<const sql_arg>(a, sizeof...(Args)));
        stages_[i].st_ = st;
        return i;
    }
    std::size_t prepare(std::string_view sql) { return add(kind::prepare, sql); }
    std::size_t ping() { return add(kind::ping, {}); }
    std::size_t reset_connection() { return add(kind::reset_connection, {}); }
    std::size_t select_db(std::string_view database) { return add(kind::select_db, database); }

    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    stage& operator[](std::size_t i) noexcept { return stages_[i]; }
    const stage& operator[](std::size_t i) const noexcept { return stages_[i]; }
    bool all_ok() const noexcept {
        for (std::size_t i = 0; i < count_; ++i)
            if (!stages_[i].ok()) return false;
        return true;
    }
    // Forgets the stages (their storage is reused by the next ones).
    void clear() noexcept { count_ = 0; }

private:
    friend struct detail::pipeline_access;
    std::size_t add(kind k, std::string_view sql, std::span<const sql_arg> args = {}) {
        if (count_ == stages_.size()) stages_.emplace_back();
        stage& s = stages_[count_];
        s.kind_ = k;
        s.sql_.assign(sql);
        s.args_ = detail::owned_args(args);
        s.st_ = statement{};
        s.diag_.clear();
        return count_++;
    }
    std::vector<stage> stages_;
    std::size_t count_ = 0;
};

}  // namespace ambisql
