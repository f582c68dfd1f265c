// The per-connection LRU cache of prepared statements, and the closes it owes the server.
#include "proto/session.hpp"

#include "proto/session_detail.hpp"

namespace ambisql::proto {

// The server holds no statement of this connection any more (new connection, reset,
// close): the cache, the closes owed for it, and what each statement had, go.
void session::forget_statements() noexcept {
    cache_.clear();
    cache_index_.clear();
    pending_closes_.clear();
    stmt_info_.clear();
}

// Statements closed (evicted from the cache) go out ahead of the next command: the
// server does not answer COM_STMT_CLOSE.
void session::write_pending_closes() {
    for (std::uint32_t id : pending_closes_) {
        stmt_info_.erase(id);
        std::uint8_t seq = 0;
        std::size_t s = begin_packet(out_);
        writer w(out_);
        w.u8(command::stmt_close);
        w.u32(id);
        end_packet(out_, s, seq);
    }
    pending_closes_.clear();
}

// Makes room for one more statement: the victim's close goes out ahead of the prepare,
// so the server never holds more statements than the cache.
void session::evict_for_insert() {
    if (cache_capacity_ > 0 && cache_.size() >= cache_capacity_) evict_lru();
}

// Drops the least recently used statement; its close goes out with the next command.
void session::evict_lru() {
    pending_closes_.push_back(cache_.back().second.id);
    cache_index_.erase(cache_.back().first);
    cache_.pop_back();
}

void session::cache_insert(std::string_view sql, const statement& st) {
    if (cache_capacity_ == 0 || cache_index_.count(sql)) {
        pending_closes_.push_back(st.id);  // used once, or prepared twice in one pipeline
        return;
    }
    cache_.emplace_front(std::string(sql), st);
    cache_index_[cache_.front().first] = cache_.begin();
    while (cache_.size() > cache_capacity_) evict_lru();
}

}  // namespace ambisql::proto
