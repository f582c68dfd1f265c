"""A hostile or broken peer: clear exceptions of the right class, the interpreter fine."""
import os
import socket
import threading
import time

import pytest

import ambisql
from conftest import socket_kwargs
from pump import pump


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


def full_unix_queue(tmp_path, room_after=None):
    """A unix socket whose listen queue is full (one connection waits in it). After
    `room_after` seconds the waiting one is taken away and every later connection is
    relayed to the test server."""
    path = str(tmp_path / "full.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(0)
    held = socket.socket(socket.AF_UNIX)
    held.connect(path)

    def run():
        time.sleep(room_after)
        srv.accept()[0].close()
        held.close()
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX)
            up.connect(os.environ["AMBISQL_TEST_SOCKET"])
            threading.Thread(target=pump, args=(c, up), daemon=True).start()
            threading.Thread(target=pump, args=(up, c), daemon=True).start()

    if room_after is not None:
        threading.Thread(target=run, daemon=True).start()
    return path, srv


def test_a_full_unix_listen_queue_is_waited_out(tmp_path):
    # The queue refuses without blocking (EAGAIN) and nothing is in progress: the connect
    # is made again until there is room (it failed at once before: "read failed: Invalid
    # argument").
    path, srv = full_unix_queue(tmp_path, room_after=0.3)
    t0 = time.monotonic()
    c = ambisql.connect(**socket_kwargs(unix_socket=path, connect_timeout=5))
    assert time.monotonic() - t0 >= 0.28
    cur = c.cursor()
    cur.execute("SELECT 11")
    assert cur.fetchone() == (11,)
    c.close()
    srv.close()


def test_a_unix_listen_queue_that_stays_full_times_out_saying_so(tmp_path):
    path, srv = full_unix_queue(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(**socket_kwargs(unix_socket=path, connect_timeout=0.2))
    assert time.monotonic() - t0 >= 0.19
    assert "listen queue stayed full" in e.value.args[1], e.value.args
    srv.close()


def test_a_full_unix_listen_queue_is_waited_out_on_asyncio(tmp_path):
    # The loop waits on a timer's descriptor between connects (fileno() changes), ticking.
    import asyncio
    import ambisql.aio

    async def main():
        path, srv = full_unix_queue(tmp_path, room_after=0.3)
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        c = await ambisql.aio.connect(**socket_kwargs(unix_socket=path, connect_timeout=5))
        ticker.cancel()
        cur = c.cursor()
        await cur.execute("SELECT 12")
        assert await cur.fetchone() == (12,)
        await c.close()
        srv.close()
        return ticks

    assert asyncio.run(main()) >= 10


def test_server_public_key_encrypts_the_password_for_caching_sha2_without_tls(tmp_path):
    # PyMySQL's server_public_key (it was accepted and ignored: the login then failed for
    # want of a key). A peer asks for caching_sha2_password's full authentication over
    # plain TCP; the client answers with the password encrypted to the given key (RSA
    # OAEP), which the key's owner decrypts to the password XOR the scramble.
    import subprocess
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(key)], check=True, capture_output=True)
    public = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout"], check=True,
                            capture_output=True).stdout
    scramble = b"abcdefghijklmnopqrst"
    caps = 0xF7FEF7FE  # (no SSL)
    g = b"\x0a" + b"5.5.5-10.11.0-MariaDB\x00" + b"\x2a\x00\x00\x00" + scramble[:8] + b"\x00"
    g += bytes([caps & 0xFF, (caps >> 8) & 0xFF, 45, 2, 0, (caps >> 16) & 0xFF, (caps >> 24) & 0xFF, 21])
    g += b"\x00" * 10 + scramble[8:] + b"\x00" + b"caching_sha2_password\x00"
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = {}

    def read_packet(c):
        head = b""
        while len(head) < 4:
            head += c.recv(4 - len(head))
        n = int.from_bytes(head[:3], "little")
        body = b""
        while len(body) < n:
            body += c.recv(n - len(body))
        return head[3], body

    def run():
        c, _ = srv.accept()
        c.sendall(len(g).to_bytes(3, "little") + b"\x00" + g)
        read_packet(c)  # the handshake response (the fast path's scramble)
        c.sendall(b"\x02\x00\x00\x02\x01\x04")  # perform full authentication
        _, got["encrypted"] = read_packet(c)
        c.sendall(b"\x07\x00\x00\x04\x00\x00\x00\x02\x00\x00\x00")  # OK
        read_packet(c)  # (whatever comes next)
        c.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        ambisql.connect(host="127.0.0.1", port=srv.getsockname()[1], user="u", password="secret",
                        ssl_mode="disabled", connect_timeout=3, server_public_key=public)
    except ambisql.Error:
        pass  # (what follows the login is not this peer's business)
    t.join(5)
    srv.close()
    assert len(got.get("encrypted", b"")) == 256, got
    (tmp_path / "enc").write_bytes(got["encrypted"])
    plain = subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", str(key), "-in", str(tmp_path / "enc"),
                            "-pkeyopt", "rsa_padding_mode:oaep"], check=True, capture_output=True).stdout
    expected = bytes(b ^ scramble[i % len(scramble)] for i, b in enumerate(b"secret\x00"))
    assert plain == expected
