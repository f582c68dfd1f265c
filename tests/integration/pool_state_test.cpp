// Nothing of one borrower reaches the next: for every kind of session state, a borrower
// leaves it behind and gives the connection back; the next borrower (the same connection:
// the pool holds one) must find none of it. For the thread pool on a thread and on a
// hub's fibers, and for async_pool on Asio coroutines.
//
// What the server's tracker reports of each kind (MariaDB 10.11, session_track_state_change
// on) decides nothing here: the test asserts the outcome, whatever told the pool.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

#include "ambisql/async_pool.hpp"
#include "ambisql/hub.hpp"
#include "ambisql/pool.hpp"
#include "common.hpp"

namespace ambisql::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct kind {
    const char* name;
    // What the first borrower does ({t}: an InnoDB table with an auto-increment id, {u}:
    // another table, {k}: a name of this test's own, {f}/{p}: a stored function / procedure
    // taking the named lock {k}). Run as text, or as prepared statements with `binary`.
    std::vector<std::string> leave;
    // What the second borrower runs; the last statement's first value must be `expect`
    // (or, with `error` set, that statement must fail with that server error).
    std::vector<std::string> check;
    std::string expect;
    int error = 0;
    bool binary = false;
    bool stream = false;  // the first borrower leaves a streamed result unread (then `leave` is its query)
};

const std::vector<kind>& kinds() {
    static const std::vector<kind> all = {
        {"table_lock", {"LOCK TABLES {t} WRITE"}, {"SELECT COUNT(*) FROM {u}"}, "0"},
        {"table_read_lock", {"LOCK TABLE {t} READ"}, {"SELECT COUNT(*) FROM {u}"}, "0"},
        {"flush_with_read_lock", {"FLUSH TABLES {t} WITH READ LOCK"}, {"SELECT COUNT(*) FROM {u}"}, "0"},
        {"named_lock", {"DO GET_LOCK('{k}', 0)"}, {"SELECT IS_USED_LOCK('{k}') IS NULL"}, "1"},
        {"named_lock_in_select", {"SELECT GET_LOCK('{k}', 0) FROM DUAL"}, {"SELECT IS_USED_LOCK('{k}') IS NULL"}, "1"},
        {"named_lock_prepared", {"SELECT GET_LOCK('{k}', 0)"}, {"SELECT IS_USED_LOCK('{k}') IS NULL"}, "1", 0, true},
        {"named_lock_in_stored_function", {"SELECT {f}()"}, {"SELECT IS_USED_LOCK('{k}') IS NULL"}, "1"},
        {"named_lock_in_procedure", {"CALL {p}()"}, {"SELECT IS_USED_LOCK('{k}') IS NULL"}, "1"},
        {"handler", {"HANDLER {t} OPEN"}, {"HANDLER {t} READ FIRST"}, "", 1109},
        {"temporary_table", {"CREATE TEMPORARY TABLE {k} (x INT)"}, {"SELECT * FROM {k}"}, "", 1146},
        {"user_variable_set", {"SET @pool_state = 1"}, {"SELECT @pool_state IS NULL"}, "1"},
        {"user_variable_in_select", {"SELECT @pool_state := 5"}, {"SELECT @pool_state IS NULL"}, "1"},
        {"user_variable_into", {"SELECT 7 INTO @pool_state"}, {"SELECT @pool_state IS NULL"}, "1"},
        {"session_variable", {"SET SESSION sql_mode = 'ANSI'"}, {"SELECT @@SESSION.sql_mode = @@GLOBAL.sql_mode"}, "1"},
        {"sql_prepare", {"PREPARE pool_state_s FROM 'SELECT 1'"}, {"EXECUTE pool_state_s"}, "", 1243},
        {"open_transaction", {"BEGIN", "INSERT INTO {t} (v) VALUES (1)"}, {"SELECT COUNT(*) FROM {t}"}, "0"},
        {"autocommit_off", {"SET autocommit = 0", "INSERT INTO {t} (v) VALUES (1)"}, {"SELECT @@autocommit"}, "1"},
        {"xa_transaction", {"XA START '{k}'", "INSERT INTO {t} (v) VALUES (1)", "XA END '{k}'"},
         {"SELECT COUNT(*) FROM {t}"}, "0"},
        {"next_transaction_isolation",
         {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"},
         // (INNODB_TRX is a cache the server refreshes at most every 0.1 s)
         {"START TRANSACTION", "INSERT INTO {t} (v) VALUES (3)", "DO SLEEP(0.15)",
          "SELECT trx_isolation_level FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = CONNECTION_ID()"},
         "REPEATABLE READ"},
        {"last_insert_id", {"INSERT INTO {t} (v) VALUES (1)"}, {"SELECT LAST_INSERT_ID()"}, "0"},
        {"last_insert_id_prepared", {"INSERT INTO {t} (v) VALUES (2)"}, {"SELECT LAST_INSERT_ID()"}, "0", 0, true},
        {"last_insert_id_set", {"SELECT LAST_INSERT_ID(42)"}, {"SELECT LAST_INSERT_ID()"}, "0"},
        {"unfinished_result", {"SELECT seq FROM seq_1_to_100000"}, {"SELECT 1"}, "1", 0, false, true},
    };
    return all;
}

std::string fill(std::string s, const std::string& key, const std::string& value) {
    for (auto at = s.find(key); at != std::string::npos; at = s.find(key, at + value.size()))
        s.replace(at, key.size(), value);
    return s;
}

enum class model { thread, fiber, asio };

struct names {
    std::string t, u, k, f, p;
    std::string operator()(std::string s) const {
        return fill(fill(fill(fill(fill(std::move(s), "{t}", t), "{u}", u), "{k}", k), "{f}", f), "{p}", p);
    }
};

// What the second borrower found.
struct outcome {
    std::uint32_t first = 0, second = 0;  // the borrowers' connection ids
    std::string value;
    int error = 0;
    std::string failure;  // a statement of the first borrower that failed (the test's own fault)
};

pool_config one_connection() {
    pool_config pc;
    pc.connection = unix_config();
    pc.limits.max_size = 1;
    pc.limits.acquire_timeout = 5000ms;
    return pc;
}

outcome borrow_twice(const kind& k, const names& n) {
    pool p(one_connection());
    outcome o;
    {
        auto c = p.acquire();
        o.first = c->connection_id();
        std::optional<row_stream> left;
        try {
            for (const auto& s : k.leave) {
                if (k.stream) {
                    left.emplace(c->stream(n(s)));
                    row_view row;
                    (void)left->next(row);  // one row read, the rest left unread
                } else if (k.binary) {
                    c->execute(n(s));
                } else {
                    c->query(n(s));
                }
            }
        } catch (const error& e) {
            o.failure = e.what();
        }
    }  // given back (the stream, if any, still unread)
    auto c = p.acquire();
    o.second = c->connection_id();
    for (std::size_t i = 0; i < k.check.size(); ++i) {
        try {
            auto r = c->query(n(k.check[i]));
            if (i + 1 == k.check.size()) o.value = r.row(0)[0].to_string();
        } catch (const error& e) {
            o.error = static_cast<int>(e.diag().server_code);
            o.value = e.what();
            break;
        }
    }
    return o;
}

outcome borrow_twice_async(const kind& k, const names& n) {
    asio::io_context io;
    async_pool p(io.get_executor(), one_connection());
    outcome o;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            {
                auto c = co_await p.async_acquire(asio::use_awaitable);
                o.first = c->connection_id();
                for (const auto& s : k.leave) {
                    boost::system::error_code ec;
                    auto token = asio::redirect_error(asio::use_awaitable, ec);
                    if (k.stream) {
                        co_await c->async_stream(n(s), token);
                        if (!ec) co_await c->async_read_rows(token);  // a batch read, the rest left unread
                    } else if (k.binary) {
                        co_await c->async_execute(n(s), token);
                    } else {
                        co_await c->async_query(n(s), token);
                    }
                    if (ec) o.failure = c->error().message;
                }
            }
            auto c = co_await p.async_acquire(asio::use_awaitable);
            o.second = c->connection_id();
            for (std::size_t i = 0; i < k.check.size(); ++i) {
                boost::system::error_code ec;
                co_await c->async_query(n(k.check[i]), asio::redirect_error(asio::use_awaitable, ec));
                if (ec) {
                    o.error = static_cast<int>(c->error().server_code);
                    o.value = c->error().message;
                    break;
                }
                if (i + 1 == k.check.size()) {
                    const auto& r = c->result();
                    o.value = r.row(0)[0].to_string();
                }
            }
        },
        asio::detached);
    io.run();
    return o;
}

class PoolState : public ::testing::TestWithParam<std::tuple<std::size_t, model>> {
protected:
    static void SetUpTestSuite() {
        n_.t = unique_table("pstate_t");
        n_.u = unique_table("pstate_u");
        n_.f = unique_table("pstate_f");
        n_.p = unique_table("pstate_p");
        connection admin(unix_config());
        admin.query("CREATE TABLE " + n_.t + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB");
        admin.query("CREATE TABLE " + n_.u + " (id INT PRIMARY KEY) ENGINE=InnoDB");
        // The lock's name is the caller's: a user variable the function reads would itself
        // be state, so each test makes its own function and procedure below.
    }
    static void TearDownTestSuite() {
        connection admin(unix_config());
        admin.query("DROP TABLE IF EXISTS " + n_.t + ", " + n_.u);
    }
    static names n_;
};
names PoolState::n_;

TEST_P(PoolState, TheNextBorrowerFindsNoneOfIt) {
    const kind& k = kinds()[std::get<0>(GetParam())];
    const model m = std::get<1>(GetParam());
    names n = n_;
    n.k = unique_table(std::string("pslock_") + k.name);
    n.f = n.k + "_f";
    n.p = n.k + "_p";
    connection admin(unix_config());
    admin.query("CREATE FUNCTION " + n.f + "() RETURNS INT RETURN GET_LOCK('" + n.k + "', 0)");
    admin.query("CREATE PROCEDURE " + n.p + "() BEGIN DO GET_LOCK('" + n.k + "', 0); END");
    admin.query("DELETE FROM " + n.t);

    outcome o;
    if (m == model::thread) {
        o = borrow_twice(k, n);
    } else if (m == model::fiber) {
        asio::io_context io;
        hub h(io);
        h.spawn([&] { o = borrow_twice(k, n); });
        io.run();
    } else {
        o = borrow_twice_async(k, n);
    }
    admin.query("DROP FUNCTION " + n.f);
    admin.query("DROP PROCEDURE " + n.p);
    admin.query("DELETE FROM " + n.t);

    ASSERT_EQ(o.failure, "") << "the first borrower's statements must run";
    if (k.stream) {
        EXPECT_NE(o.second, o.first) << "a connection with a result unread is closed, not handed on";
    } else {
        EXPECT_EQ(o.second, o.first) << "the connection is reset and kept, not closed";
    }
    if (k.error) {
        EXPECT_EQ(o.error, k.error) << o.value;
    } else {
        EXPECT_EQ(o.error, 0) << o.value;
        EXPECT_EQ(o.value, k.expect);
    }
}

std::string name_of(const ::testing::TestParamInfo<PoolState::ParamType>& info) {
    static const char* models[] = {"thread", "fiber", "asio"};
    return std::string(kinds()[std::get<0>(info.param)].name) + "_" + models[static_cast<int>(std::get<1>(info.param))];
}

INSTANTIATE_TEST_SUITE_P(EveryKind, PoolState,
                         ::testing::Combine(::testing::Range<std::size_t>(0, kinds().size()),
                                            ::testing::Values(model::thread, model::fiber, model::asio)),
                         name_of);

}  // namespace
}  // namespace ambisql::test
