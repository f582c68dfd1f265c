"""A hostile or broken peer: clear exceptions of the right class, the interpreter fine."""
import socket
import threading

import pytest

import ambisql


def serve_once(payload, close_after=True):
    """A loopback peer that accepts one connection, sends `payload` and closes (or holds)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        c, _ = srv.accept()
        c.sendall(payload)
        if close_after:
            c.close()
        else:
            c.recv(65536)
            c.close()
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1]


@pytest.mark.parametrize("payload", [
    b"\x05\x00\x00\x00garbg",                          # a packet that is no greeting
    b"\x0a\x00\x00\x00\x0a5.5.5-x\x00\x01\x00",           # a greeting cut short
    b"",                                                # closed at once
    b"\xff\xff\xff\x00" + b"x" * 100,                  # a 16 MiB packet that never comes
])
def test_bad_greetings_fail_cleanly(payload):
    port = serve_once(payload)
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(host="127.0.0.1", port=port, user="u", password="p", connect_timeout=1,
                        ssl_mode="disabled")
    assert e.value.args[0] == 2003
    assert e.value.args[1].startswith("Can't connect to MySQL server on '127.0.0.1'")


def test_a_greeting_with_an_injected_ok_is_refused_before_tls():
    # A MariaDB-like greeting offering TLS, with an OK packet appended in plaintext.
    scramble = b"abcdefghijklmnopqrst"
    caps = 0xF7FEFFFE
    g = b"\x0a" + b"5.5.5-10.11.0-MariaDB\x00" + b"\x2a\x00\x00\x00" + scramble[:8] + b"\x00"
    g += bytes([caps & 0xFF, (caps >> 8) & 0xFF, 45, 2, 0, (caps >> 16) & 0xFF, (caps >> 24) & 0xFF, 21])
    g += b"\x00" * 10 + scramble[8:] + b"\x00" + b"mysql_native_password\x00"
    pkt = len(g).to_bytes(3, "little") + b"\x00" + g
    ok = b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00"
    port = serve_once(pkt + ok, close_after=False)
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(host="127.0.0.1", port=port, user="u", password="p", connect_timeout=2,
                        ssl_mode="required")
    assert "before TLS began" in e.value.args[1]
