// One synchronous data-access layer, written once, run unchanged five ways.
//   repository_demo <mysql://user:password@host:port/db> [requests]
//
// The repository below is the kind of code people actually write: objects whose related
// rows load lazily on first access. Each request looks an author up (the query includes
// SLEEP(0.05), standing for real work on the server) and counts the author's books.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ambisql/ambisql.hpp"
#include "ambisql/async_connection.hpp"
#include "ambisql/bridge.hpp"
#include "ambisql/hub.hpp"

namespace {

// ---------------------------------------------------------------- the data-access layer

struct book {
    std::int64_t id;
    std::string title;
};

class repository;

class author {
public:
    author(repository& r, std::int64_t id, std::string name) : repo_(&r), id_(id), name_(std::move(name)) {}
    const std::string& name() const { return name_; }
    // Runs a query the first time it is called.
    const std::vector<book>& books();

private:
    repository* repo_;
    std::int64_t id_;
    std::string name_;
    std::optional<std::vector<book>> books_;
};

class repository {
public:
    explicit repository(ambisql::connection& c) : c_(c) {}
    author find_author(std::int64_t id) {
        auto r = c_.query("SELECT id, name, SLEEP(0.05) FROM demo_authors WHERE id = ?", id);
        return author(*this, r.row(0)[0].as<std::int64_t>(), r.row(0)[1].as<std::string>());
    }
    std::vector<book> books_of(std::int64_t author_id) {
        std::vector<book> out;
        for (auto row : c_.query("SELECT id, title FROM demo_books WHERE author_id = ? ORDER BY id", author_id).rows())
            out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>()});
        return out;
    }

private:
    ambisql::connection& c_;
};

const std::vector<book>& author::books() {
    if (!books_) books_ = repo_->books_of(id_);
    return *books_;
}

// One request of the application: plain synchronous code.
std::size_t handle_request(const ambisql::config& cfg, std::int64_t author_id) {
    ambisql::connection c(cfg);
    repository repo(c);
    author a = repo.find_author(author_id);
    return a.books().size();
}

// ---------------------------------------------------------------- five ways to run it

using clk = std::chrono::steady_clock;

struct row {
    const char* how;
    double seconds;
    std::size_t books;
};

template <class F>
row timed(const char* how, F&& f) {
    auto t0 = clk::now();
    std::size_t books = f();
    return {how, std::chrono::duration<double>(clk::now() - t0).count(), books};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return std::fprintf(stderr, "usage: repository_demo URL [requests]\n"), 2;
    const auto cfg = ambisql::config::from_url(argv[1]);
    const int n = argc > 2 ? std::atoi(argv[2]) : 200;
    {
        ambisql::connection c(cfg);
        c.query("CREATE TABLE IF NOT EXISTS demo_authors (id INT PRIMARY KEY, name VARCHAR(50))");
        c.query("CREATE TABLE IF NOT EXISTS demo_books (id INT PRIMARY KEY, author_id INT, title VARCHAR(80), KEY (author_id))");
        c.query("REPLACE INTO demo_authors SELECT seq, CONCAT('author ', seq) FROM seq_1_to_10");
        c.query("REPLACE INTO demo_books SELECT seq, seq % 10 + 1, CONCAT('book ', seq) FROM seq_1_to_100");
    }
    auto id_of = [](int i) { return static_cast<std::int64_t>(i % 10 + 1); };
    std::vector<row> rows;

    rows.push_back(timed("one thread, blocking", [&] {
        std::size_t books = 0;
        for (int i = 0; i < n; ++i) books += handle_request(cfg, id_of(i));
        return books;
    }));

    rows.push_back(timed("thread pool (8 threads)", [&] {
        std::atomic<std::size_t> books{0};
        std::atomic<int> next{0};
        std::vector<std::thread> pool;
        for (int t = 0; t < 8; ++t)
            pool.emplace_back([&] {
                for (int i; (i = next++) < n;) books += handle_request(cfg, id_of(i));
            });
        for (auto& t : pool) t.join();
        return books.load();
    }));

    rows.push_back(timed("explicit coroutines (rewritten async)", [&] {
        boost::asio::io_context io;
        std::size_t books = 0;
        for (int i = 0; i < n; ++i)
            boost::asio::co_spawn(
                io,
                [&, i]() -> boost::asio::awaitable<void> {
                    ambisql::async_connection c(io.get_executor(), cfg);
                    co_await c.async_connect(boost::asio::use_awaitable);
                    co_await c.async_query_with(boost::asio::use_awaitable,
                                                "SELECT id, name, SLEEP(0.05) FROM demo_authors WHERE id = ?", id_of(i));
                    co_await c.async_query_with(boost::asio::use_awaitable,
                                                "SELECT id, title FROM demo_books WHERE author_id = ?", id_of(i));
                    books += c.result().row_count();
                },
                boost::asio::detached);
        io.run();
        return books;
    }));

    rows.push_back(timed("fibers (the sync code, unchanged)", [&] {
        boost::asio::io_context io;
        ambisql::hub hub(io);
        std::size_t books = 0;
        for (int i = 0; i < n; ++i) hub.spawn([&, i] { books += handle_request(cfg, id_of(i)); });
        io.run();
        return books;
    }));

    rows.push_back(timed("coroutines -> run_sync -> sync code", [&] {
        boost::asio::io_context io;
        ambisql::hub hub(io);
        std::size_t books = 0;
        for (int i = 0; i < n; ++i)
            boost::asio::co_spawn(
                io,
                [&, i]() -> boost::asio::awaitable<void> {
                    books += co_await ambisql::run_sync(hub, [&] { return handle_request(cfg, id_of(i)); });
                },
                boost::asio::detached);
        io.run();
        return books;
    }));

    std::printf("\n%d concurrent requests, each: an author lookup with SLEEP(0.05), then its books (lazy)\n\n", n);
    std::printf("%-40s %10s %10s %8s\n", "how", "wall s", "req/s", "books");
    for (const auto& r : rows) std::printf("%-40s %10.2f %10.0f %8zu\n", r.how, r.seconds, n / r.seconds, r.books);
    for (const auto& r : rows)
        if (r.books != rows[0].books) return std::fprintf(stderr, "results differ between modes\n"), 1;
    return 0;
}
