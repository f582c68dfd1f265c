#pragma once
// The sans-IO protocol engine of one connection.
//
// An operation is started with start_*(), then resume() is called until it says done.
// In between, the driver moves bytes: when resume() says `write`, send write_buffer()
// and report on_written(); when it says `read`, receive into read_buffer() and report
// on_read(). Nothing here touches a socket, a clock or a thread.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <span>
#include <unordered_map>
#include <string>
#include <string_view>
#include <vector>

#include "ambisql/config.hpp"
#include "ambisql/pipeline.hpp"
#include "ambisql/error.hpp"
#include "ambisql/format.hpp"
#include "ambisql/resultset.hpp"
#include "ambisql/statement.hpp"
#include "proto/compress.hpp"
#include "proto/framing.hpp"
#include "proto/packets.hpp"
#include "proto/result_builder.hpp"
#include "proto/tls.hpp"

namespace ambisql::proto {

enum class next_action : std::uint8_t { done, read, write };

class session {
public:
    session() = default;
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    // ---- the driver's side
    std::span<std::uint8_t> read_buffer();
    void on_read(std::size_t n);  // 0: the peer closed the connection
    std::span<const std::uint8_t> write_buffer();
    void on_written(std::size_t n) noexcept;
    // The transport failed: fails the operation and breaks the connection.
    void on_io_error(error_kind kind, errc code, std::string message);
    next_action resume();

    // ---- operations; each needs the previous one done. false: nothing started, diag()
    // says why (not connected, broken, a streamed result still pending, bad arguments).
    // `secure_transport`: a unix socket (TLS preferred is skipped, cleartext auth allowed).
    bool start_connect(const config& cfg, std::string_view host, bool secure_transport);
    // out != nullptr: buffer every resultset into *out. out == nullptr: stream; the
    // operation stops once the first resultset's header (or OK) has been read.
    bool start_query(std::string_view sql, results* out);
    // Interpolates args into sql (client-side escaping) and starts the query.
    bool start_query(std::string_view sql, std::span<const sql_arg> args, results* out);
    // SET NAMES charset [COLLATE collation]: once the server says OK, the character set in
    // force is known to be `charset` whatever the server reports (names: letters, digits
    // and '_' only, and a character set the driver knows).
    bool start_set_charset(std::string_view charset, std::string_view collation);
    bool start_read_rows();    // streaming: the next batch of rows of this resultset
    bool start_next_result();  // streaming: the next resultset's header
    bool start_discard();      // reads and drops whatever is left of a streamed result
    bool start_ping();
    bool start_init_db(std::string_view db);
    bool start_reset_connection();
    bool start_quit();

    // ---- prepared statements (binary protocol)
    bool start_prepare(std::string_view sql, statement* out);
    // out as for start_query (nullptr: stream the binary rows).
    bool start_execute(const statement& st, std::span<const sql_arg> args, results* out);
    // Through the statement cache: a cached statement is executed at once; otherwise it is
    // prepared and executed in the same round trip on MariaDB (two elsewhere) and cached.
    bool start_execute(std::string_view sql, std::span<const sql_arg> args, results* out);
    bool start_close_statement(const statement& st);  // no response; done once sent
    bool start_reset_statement(const statement& st);
    std::size_t cached_statements() const noexcept { return cache_index_.size(); }

    // ---- execute_many: `sql` once per row of `values` (row-major, `width` per row; the
    // span must stay valid until done). MariaDB: COM_STMT_BULK_EXECUTE in batches;
    // elsewhere pipelined executes. *out gets one resultset whose OK carries the total of
    // affected rows.
    bool start_execute_many(std::string_view sql, std::span<const sql_arg> values, std::size_t width, results* out);

    // ---- pipelines: every stage's request in one write, then the responses in order.
    // Done when every stage has its result or error; the operation itself fails only
    // when the connection does.
    bool start_pipeline(pipeline& p);

    // ---- LOCAL INFILE: where honoured requests get their data (set by the driver, which
    // may read files; the core does not). The source opens `file_name` and sets `next` to
    // a function that appends the next piece of the contents to `chunk` (nothing appended:
    // the end); both return false with `why` on failure. The contents go out piece by
    // piece as the socket takes them, so a file of any size needs little memory. Unset:
    // every request is refused.
    using infile_reader = std::function<bool(std::string& chunk, std::string& why)>;
    using infile_source = std::function<bool(std::string_view file_name, infile_reader& next, std::string& why)>;
    void set_infile_source(infile_source src) { infile_source_ = std::move(src); }
    // Abandons whatever is in flight: the connection is closed.
    void close() noexcept;

    bool in_progress() const noexcept { return op_ != op::none; }
    // A pipeline is being answered: the server works through queued commands, so one
    // response follows another at its pace (a driver may poll for them instead of sleeping).
    bool pipelining() const noexcept { return pipe_ != nullptr; }
    // The rows of a large result are streaming in (256 KiB or more of it so far, and no
    // packet over 16 KiB half read): a driver may let them pile up briefly rather than
    // wake for every chunk the server writes.
    bool bulk_rows() const noexcept;
    // The last operation's failure, if any.
    const diagnostics& diag() const noexcept { return diag_; }
    bool failed() const noexcept { return diag_.kind != error_kind::none; }
    bool broken() const noexcept { return broken_; }
    bool connected() const noexcept { return connected_ && !broken_; }

    // ---- streaming state
    enum class stream_state : std::uint8_t { idle, rows, set_done };
    stream_state stream() const noexcept { return stream_; }
    // Another command cannot start while a streamed result is unfinished.
    bool result_pending() const noexcept {
        return stream_ == stream_state::rows ||
               (stream_ == stream_state::set_done && (status_ & server_status::more_results_exist));
    }
    const resultset& stream_header() const noexcept { return stream_set_; }
    std::size_t batch_size() const noexcept { return batch_rows_; }
    row_view batch_row(std::size_t i) const noexcept {
        std::size_t n = stream_set_.column_count();
        return detail::result_builder::row(reader_.base(), batch_fields_.data() + i * n, stream_set_.columns().data(),
                                           n, binary_rows_);
    }

    // ---- connection facts
    // This session of the server (a new one per connect and per reset_connection): what
    // the statements it prepares carry.
    std::uint64_t epoch() const noexcept { return epoch_; }
    std::uint16_t status() const noexcept { return status_; }
    // Whether a transaction may be open: the last OK/EOF said one is, or a statement failed
    // since (an ERR carries no status, and a failed statement may have begun one, holding
    // the locks it took).
    bool may_be_in_transaction() const noexcept { return !status_known_ || (status_ & server_status::in_trans); }
    // Whether the session's state may have changed since the last clear_state_changed():
    // the server reported a change (SESSION_STATE_CHANGED: tracked variables, schema, and
    // with session_track_state_change user variables, temporary tables, ...), an OK
    // carried a LAST_INSERT_ID, or a statement was sent or prepared whose text may leave
    // state the server does not report (locks, HANDLERs, ...: untracked.hpp).
    bool state_changed() const noexcept { return state_changed_; }
    void clear_state_changed() noexcept { state_changed_ = false; }
    std::uint64_t capabilities() const noexcept { return caps_; }
    std::uint32_t connection_id() const noexcept { return hs_.connection_id; }
    const std::string& server_version() const noexcept { return hs_.server_version; }
    bool is_mariadb() const noexcept { return hs_.is_mariadb; }
    bool tls_active() const noexcept { return tls_on_; }
    bool compressed() const noexcept { return zon_; }
    std::string tls_version() const { return tls_.version(); }
    // How text is escaped now: NO_BACKSLASH_ESCAPES from the last status, the character
    // set's family; with the character set unknown (changed where the server does not
    // report it) text literals are refused.
    escaping escaping_rules() const noexcept {
        return {(status_ & server_status::no_backslash_escapes) != 0, charset_unknown_, mb_};
    }
    // Whether the server reports every change of character_set_client on this session
    // (the connect and every reset make sure it does, where the server can).
    bool charset_tracked() const noexcept { return charset_tracked_; }
    // The session's character set (character_set_client) and default schema, as the
    // handshake set them and session tracking has reported since; charset is empty once
    // an untracked change made it unknown.
    const std::string& charset() const noexcept { return charset_; }
    const std::string& schema() const noexcept { return schema_; }

private:
    enum class op : std::uint8_t { none, connect, query, simple, quit, prepare, pipeline, bulk };
    enum class mode : std::uint8_t { buffered, stream, discard };
    enum class st : std::uint8_t {
        // connect
        greeting, tls_start, tls_handshake, auth_reply, track_reply,
        // query
        first, columns, columns_eof, rows, infile_send, infile_ack,
        // simple
        simple_reply, flush, flush_only,
        // prepare
        prep_ok, prep_params, prep_params_eof, prep_columns, prep_columns_eof,
        // bulk
        bulk_reply,
    };

    next_action fail(error_kind kind, errc code, std::string message, bool usable);
    next_action fail_server(byte_span err_payload, error_kind kind = error_kind::server);
    next_action finish() noexcept;
    next_action wait_input();
    // The next whole packet, decrypting buffered TLS input when `fill`; false when the
    // operation must wait (or failed: check op_).
    bool take(byte_span& payload, bool fill = true);
    bool output_pending();
    void reset_wire() noexcept;
    bool prepare_output();  // compresses and encrypts what the packets layer has for the wire
    bool pull_tls(std::span<std::uint8_t> room, std::size_t& n);  // decrypted bytes into room
    void new_exchange(std::uint8_t seq) noexcept;  // a command's packets, or its response, begin
    void begin_command(std::uint8_t cmd);
    bool can_start();
    bool start_simple(std::uint8_t cmd, std::string_view arg);  // a command answered by OK/ERR
    next_action send_packet(std::string_view payload);
    void start_op(op o, st s);

    next_action step_connect();
    next_action step_query();
    void on_infile_request(byte_span p);
    bool step_infile(next_action& a);
    next_action step_simple();
    next_action step_prepare();
    next_action prepared();
    next_action step_pipeline();
    next_action step_bulk();
    bool statement_ok(byte_span p, next_action& done);
    bool begin_resultset(byte_span column_count);  // false: failed
    void start_internal_query(std::string_view sql);  // a statement of the driver's own, its answer dropped
    bool start_execute_many_rows(std::string_view sql, std::span<const sql_arg> values, std::size_t width,
                                 results* out);
    next_action step();       // the running operation's next step
    next_action step_many();  // execute_many's transaction around the rows: its next command
    bool read_ok(byte_span p, ok_info& ok);  // parses an OK and applies tracked session state
    void reset_session_state();
    void new_epoch() noexcept;
    bool own_statement(const statement& st);  // false (and failed): it belongs elsewhere
    void note_statement(std::string_view sql);  // what SQL of the application may have changed
    void note_untracked(std::string_view sql) noexcept;  // (also for statements prepared)
    void write_track_request();                  // the statement that makes the server track the charset
    void read_track_reply(byte_span p);
    next_action send_bulk_batch();
    pipeline& executes_of(const statement& st, std::span<const sql_arg> values, std::size_t width);
    next_action end_pipeline();
    void feed_pipeline();
    bool setup_stage();  // the sub-operation of pipeline stage stage_; false: none left
    void plan_stages(std::size_t from);
    void evict_for_insert();
    void evict_lru();
    bool append_execute(std::uint32_t id, std::span<const sql_arg> args);
    void write_command(std::span<const std::uint8_t> payload, std::uint32_t id);  // id patched in at 1..4
    bool build_execute(std::uint32_t id, std::span<const sql_arg> args);  // long data + execute payloads
    void begin_results(results* out, bool binary);
    void write_pending_closes();
    void forget_statements() noexcept;
    void cache_insert(std::string_view sql, const statement& st);
    next_action send_handshake_response();
    bool auth_response(std::string_view plugin, std::string_view data, std::string& out, errc& err,
                       std::string& why);

    // wire state
    packet_reader reader_;
    std::vector<std::uint8_t> out_;      // plaintext packets to send
    std::size_t out_pos_ = 0;
    std::vector<std::uint8_t> net_in_;   // TLS: ciphertext scratch for the driver
    std::vector<std::uint8_t> net_out_;  // TLS: ciphertext to send
    std::size_t net_out_pos_ = 0;
    tls_channel tls_;
    bool tls_on_ = false;
    compressed_framing zf_;              // CLIENT_COMPRESS, once authenticated
    std::vector<std::uint8_t> zout_;     // compressed frames to send (or to encrypt)
    std::size_t zout_pos_ = 0;
    bool zon_ = false;
    bool eof_ = false;
    std::uint8_t seq_ = 0;

    // operation state
    op op_ = op::none;
    st st_ = st::greeting;
    std::uint64_t rx_since_exchange_ = 0;  // bytes received since a command or response began
    mode mode_ = mode::buffered;
    diagnostics diag_;
    bool broken_ = false;
    bool connected_ = false;

    // connection facts
    std::uint64_t epoch_ = 0;
    server_handshake hs_;
    std::uint64_t caps_ = 0;
    std::uint16_t status_ = 0;
    bool status_known_ = true;  // no ERR since the last OK/EOF
    // The current command, for diag_.sent (record_sent()): whether it began inside a
    // transaction, whether it is a COMMIT, how many bytes of it went out.
    bool galera_ = false;  // connected with galera_check (a Galera node)
    bool cmd_in_tx_ = false;
    bool cmd_commit_ = false;
    std::uint64_t cmd_written_ = 0;
    void record_sent() noexcept;
    bool state_changed_ = false;
    void set_status(std::uint16_t s) noexcept {
        status_ = s;
        status_known_ = true;
        if (s & server_status::session_state_changed) state_changed_ = true;
    }
    multibyte mb_ = multibyte::none;  // charset_'s family
    bool charset_unknown_ = false;
    bool charset_tracked_ = false;  // the server reports character_set_client's changes
    bool track_pending_ = false;    // the tracking statement's answer is next (connect, reset)
    bool track_confirmed_ = false;  // the last OK read reported the tracked list
    std::string charset_;
    std::string pending_charset_;  // start_set_charset's, applied when the server says OK
    // The handshake's, which a reset restores (a copy: the connect's config may be gone or
    // replaced by then, as cfg_ says).
    std::string handshake_charset_;
    void set_charset(std::string cs);
    std::string schema_;

    // connect (the connect's only: the caller's config may go or change after it)
    const config* cfg_ = nullptr;
    std::string host_;
    bool secure_transport_ = false;
    std::string plugin_;
    std::string auth_data_;
    bool switched_ = false;
    bool sha2_key_requested_ = false;
    std::vector<std::pair<std::string, std::string>> attrs_;

    // query
    results* out_results_ = nullptr;
    resultset* cur_ = nullptr;  // resultset being filled (buffered), or &stream_set_
    std::size_t ncols_ = 0;
    std::size_t cols_seen_ = 0;
    resultset stream_set_;
    stream_state stream_ = stream_state::idle;
    std::vector<detail::field_ref> batch_fields_;
    std::size_t batch_rows_ = 0;
    std::string sql_scratch_;
    bool binary_rows_ = false;  // the rows being read are binary-protocol rows
    std::uint8_t simple_cmd_ = 0;

    // prepared statements
    statement* prep_out_ = nullptr;  // where start_prepare reports the statement
    statement prep_;
    std::size_t prep_defs_left_ = 0;
    bool then_execute_ = false;      // an execute follows the prepare in this operation
    bool exec_pipelined_ = false;    // ... already sent with id 0xFFFFFFFF (MariaDB)
    bool cache_result_ = false;      // put the prepared statement into the cache
    std::vector<std::uint8_t> exec_payload_;  // the execute to send once the id is known
    std::vector<std::vector<std::uint8_t>> long_payloads_;  // SEND_LONG_DATA ahead of it
    std::string prep_sql_;
    // What the server holds for each statement: its column definitions (MariaDB's
    // CACHE_METADATA: kept from the prepare, or the last execute that sent them, for
    // executes whose results skip them), and the parameter types bound by the last
    // execute (empty: unknown), so executes with the same types leave them out.
    struct stmt_state {
        std::vector<std::uint8_t> meta;
        std::vector<std::uint8_t> types;
    };
    std::unordered_map<std::uint32_t, stmt_state> stmt_info_;
    std::vector<std::uint8_t> prep_meta_;  // the definitions of the prepare being read
    std::vector<std::uint8_t> prep_types_; // the types of the execute sent with that prepare
    std::uint32_t exec_stmt_ = 0;          // the statement whose execute is being answered
    diagnostics deferred_;           // a failure to report once the pipeline is read
    std::vector<std::uint32_t> pending_closes_;  // sent ahead of the next command
    // LRU statement cache: most recent at the front.
    std::list<std::pair<std::string, statement>> cache_;
    std::unordered_map<std::string_view, std::list<std::pair<std::string, statement>>::iterator> cache_index_;
    std::size_t cache_capacity_ = 64;

    // LOCAL INFILE
    infile_source infile_source_;
    std::string infile_expected_;  // the file the last LOAD DATA LOCAL statement named
    bool infile_armed_ = false;    // a request for it may come now (once)
    bool infile_sent_ = false;     // this query's request was honoured
    infile_reader infile_next_;    // the honoured file, while it is being sent
    std::string infile_name_;
    std::uint64_t infile_bytes_ = 0;
    std::string infile_chunk_;

    // execute_many
    std::span<const sql_arg> bulk_values_;
    std::size_t bulk_width_ = 0;
    std::size_t bulk_next_ = 0;   // first row not sent yet
    std::uint64_t bulk_affected_ = 0;
    std::uint32_t bulk_id_ = 0;
    bool then_bulk_ = false;      // a bulk execute follows the prepare
    pipeline bulk_pipe_;          // servers without bulk operations: pipelined executes
    results* bulk_out_ = nullptr;
    bool bulk_in_result_ = false;  // reading the result set a batch was answered with (RETURNING)
    // execute_many is all or nothing: its rows run inside BEGIN ... COMMIT (autocommit, no
    // transaction open) or SAVEPOINT ... RELEASE SAVEPOINT (inside one), and a failing row
    // rolls every row back.
    enum class many_phase : std::uint8_t { none, begin, rows, end };
    many_phase many_ = many_phase::none;
    bool many_began_ = false;  // BEGIN (else SAVEPOINT)
    std::string many_sql_;
    std::span<const sql_arg> many_values_;
    std::size_t many_width_ = 0;
    results* many_out_ = nullptr;
    diagnostics many_error_;  // the rows' failure, reported once they are rolled back
    results bulk_scratch_;         // where it goes when the caller keeps no results

    // pipeline: requests go out at most pipe_window bytes ahead of the stage being
    // answered, so neither side can block writing while the other does (a pipeline of
    // 100 000 stages would otherwise fill both directions' socket buffers).
    pipeline* pipe_ = nullptr;
    std::vector<std::uint8_t> pipe_buf_;   // every stage's request
    std::vector<std::size_t> pipe_ends_;   // where stage i's request ends in pipe_buf_
    std::size_t pipe_sent_ = 0;            // bytes of pipe_buf_ handed to out_
    std::size_t pipe_planned_ = 0;         // stages before this one are in pipe_buf_
    std::vector<std::uint8_t> pipe_plan_;  // how each stage runs (pipeline.cpp)
    std::size_t stage_ = 0;
    op sub_op_ = op::none;  // the running stage's kind of operation
};

}  // namespace ambisql::proto
