// The layers between packets and the socket: read/write buffers, TLS (memory BIOs),
// compression, and taking whole packets off the input.
#include "proto/session.hpp"

#include "proto/session_detail.hpp"

namespace ambisql::proto {

namespace {
constexpr std::size_t tls_scratch = 64 * 1024;
}  // namespace

std::span<std::uint8_t> session::read_buffer() {
    if (tls_on_) {
        if (net_in_.size() < tls_scratch) net_in_.resize(tls_scratch);
        return net_in_;
    }
    return zon_ ? zf_.space() : reader_.space();
}

bool session::bulk_rows() const noexcept {
    constexpr std::uint64_t bulk_after = 256 * 1024;
    constexpr std::size_t small_packet = 16 * 1024;
    return op_ != op::none && st_ == st::rows && rx_since_exchange_ >= bulk_after && reader_.missing() <= small_packet;
}

void session::on_read(std::size_t n) {
    rx_since_exchange_ += n;
    if (n == 0) {
        eof_ = true;
    } else if (tls_on_) {
        tls_.feed(net_in_.data(), n);
    } else if (zon_) {
        zf_.commit(n);
    } else {
        reader_.commit(n);
    }
}

// The bytes for the wire: the packets, compressed into frames, encrypted (each layer
// when on).
std::span<const std::uint8_t> session::write_buffer() {
    if (!tls_on_ && !zon_) return {out_.data() + out_pos_, out_.size() - out_pos_};
    prepare_output();
    if (tls_on_) return {net_out_.data() + net_out_pos_, net_out_.size() - net_out_pos_};
    return {zout_.data() + zout_pos_, zout_.size() - zout_pos_};
}

void session::on_written(std::size_t n) noexcept {
    cmd_written_ += n;
    auto& buf = tls_on_ ? net_out_ : zon_ ? zout_ : out_;
    auto& pos = tls_on_ ? net_out_pos_ : zon_ ? zout_pos_ : out_pos_;
    pos += n;
    if (pos >= buf.size()) {
        buf.clear();
        pos = 0;
    }
}

void session::on_io_error(error_kind kind, errc code, std::string message) {
    fail(kind, code, std::move(message), false);
}

bool session::prepare_output() {
    if (zon_ && out_pos_ < out_.size()) {
        out_pos_ += zf_.compress({out_.data() + out_pos_, out_.size() - out_pos_}, zout_);
        if (out_pos_ == out_.size()) {
            out_.clear();
            out_pos_ = 0;
        }
    }
    if (!tls_on_) return true;
    auto& plain = zon_ ? zout_ : out_;
    auto& plain_pos = zon_ ? zout_pos_ : out_pos_;
    if (plain_pos < plain.size()) {
        std::string err;
        if (!tls_.write(plain.data() + plain_pos, plain.size() - plain_pos, err)) {
            fail(error_kind::tls, errc::tls_failed, std::move(err), false);
            return false;
        }
        plain.clear();
        plain_pos = 0;
    }
    tls_.drain(net_out_);
    return true;
}

bool session::output_pending() {
    if (!tls_on_ && !zon_) return out_pos_ < out_.size();
    if (!prepare_output()) return false;
    if (tls_on_) return net_out_pos_ < net_out_.size();
    return zout_pos_ < zout_.size();
}

void session::new_exchange(std::uint8_t seq) noexcept {
    seq_ = seq;
    rx_since_exchange_ = 0;
    if (zon_) zf_.response_begins();
}

next_action session::wait_input() {
    if (output_pending()) return next_action::write;
    if (op_ == op::none) return next_action::done;
    if (eof_) return fail(error_kind::network, errc::connection_closed, "the server closed the connection", false);
    return next_action::read;
}

bool session::pull_tls(std::span<std::uint8_t> room, std::size_t& n) {
    std::string err;
    auto ts = tls_.read(room.data(), room.size(), n, err);
    if (ts == tls_channel::status::ok) return true;
    if (ts == tls_channel::status::closed)
        fail(error_kind::network, errc::connection_closed, "the server closed the TLS session", false);
    else if (ts == tls_channel::status::error)
        fail(error_kind::tls, errc::tls_failed, std::move(err), false);
    return false;
}

bool session::take(byte_span& p, bool fill) {
    for (;;) {
        errc e{};
        auto s = reader_.next(p, seq_, e);
        if (s == packet_reader::status::ok) return true;
        if (s == packet_reader::status::error) {
            fail(error_kind::protocol, e,
                 e == errc::sequence_mismatch ? "packet sequence mismatch: the stream is out of step"
                                              : "packet larger than max_packet_size",
                 false);
            return false;
        }
        if (!fill) return false;
        std::size_t n = 0;
        if (zon_) {
            std::string why;
            auto zs = zf_.next(reader_, why);
            if (zs == compressed_framing::status::ok) continue;
            if (zs == compressed_framing::status::error) {
                fail(error_kind::protocol, errc::protocol_error, std::move(why), false);
                return false;
            }
            if (!tls_on_) return false;
            auto room = zf_.space();
            if (!pull_tls(room, n)) return false;
            zf_.commit(n);
            continue;
        }
        if (!tls_on_) return false;
        if (!pull_tls(reader_.space(), n)) return false;
        reader_.commit(n);
    }
}

// Every buffer and layer between the packets and the socket, back to a fresh connection's.
void session::reset_wire() noexcept {
    out_.clear();
    out_pos_ = 0;
    net_out_.clear();
    net_out_pos_ = 0;
    reader_.reset();
    reader_.set_check_sequence(true);
    tls_.reset();
    tls_on_ = false;
    zf_.reset();
    zon_ = false;
    zout_.clear();
    zout_pos_ = 0;
}

}  // namespace ambisql::proto
