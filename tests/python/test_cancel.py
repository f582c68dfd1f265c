"""The cancellation rule's edges: a second interrupt while a KILL is on its way, and
exceptions other than asyncio's CancelledError in a coroutine that waits on a query."""
import asyncio
import os
import signal
import socket
import threading
import time
import uuid

import pytest

import ambisql
import ambisql.aio

from conftest import ended, server_kwargs


class Relay:
    """The first connection relayed to the test server; every later one (a KILL's side
    connection) accepted and never answered."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        first = True
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if not first:
                self.held.append(c)
                continue
            first = False
            up = socket.create_connection(("127.0.0.1", int(os.environ["AMBISQL_TEST_PORT"])))
            for a, b in ((c, up), (up, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.srv.close()
        for c in self.held:
            c.close()


class Interrupt(Exception):
    pass


def test_a_second_interrupt_closes_the_connection_while_its_kill_waits():
    # Review defect 9: after a first Ctrl-C the blocking wait killed the command and
    # drained it, ignoring a second Ctrl-C for as long as the KILL took (here: a side
    # connection nobody answers, until its connect timeout; then the statement's end).
    relay = Relay()
    c = ambisql.connect(**server_kwargs(host="127.0.0.1", port=relay.port))
    hits = []

    def handler(signum, frame):
        hits.append(time.monotonic())
        if len(hits) >= 2:
            signal.setitimer(signal.ITIMER_REAL, 0)
        raise Interrupt(len(hits))

    old = signal.signal(signal.SIGALRM, handler)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 0.3, 0.3)
    try:
        with pytest.raises(Interrupt) as e:
            c.cursor().execute("SELECT SLEEP(8)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        relay.close()
    assert e.value.args == (2,), "the second interrupt's exception, which closed the connection"
    assert time.monotonic() - start < 3.0
    assert not c.open


def test_a_coroutine_closed_while_it_awaits_a_query_kills_the_command():
    # Review defect 9: on an exception other than CancelledError (GeneratorExit here: the
    # coroutine closed; KeyboardInterrupt, SystemExit) the asyncio driver only stopped
    # watching: the command ran on, and every later call on the connection got 2014.
    marker = "py_closed_" + uuid.uuid4().hex[:8]

    async def main():
        conn = await ambisql.aio.connect(**server_kwargs())
        cur = conn.cursor()
        coro = cur.execute("SELECT SLEEP(10) /* %s */" % marker)
        coro.send(None)  # sent; the coroutine waits on the socket
        await asyncio.sleep(0.2)
        coro.close()  # GeneratorExit inside the wait
        assert ended(marker)
        await cur.execute("SELECT 1")
        assert await cur.fetchall() == ((1,),)
        conn.close()

    asyncio.run(main())


def test_a_kill_the_server_never_answers_gives_up_at_the_cancel_timeout():
    # The core's rule bounds a cancellation: its KILL's side connection is never answered
    # here, and the connection is closed at cancel_timeout (0.6 s) after the interrupt,
    # instead of at the side connection's connect timeout or never.
    relay = Relay()
    c = ambisql.connect(**server_kwargs(host="127.0.0.1", port=relay.port, cancel_timeout=0.6))

    def handler(signum, frame):
        raise Interrupt()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    start = time.monotonic()
    try:
        with pytest.raises(Interrupt):
            c.cursor().execute("SELECT SLEEP(8)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        relay.close()
    took = time.monotonic() - start
    assert 0.7 <= took < 2.5, took
    assert not c.open


def test_a_cancelled_tasks_kill_the_server_never_answers_gives_up_at_the_cancel_timeout():
    relay = Relay()

    async def main():
        conn = await ambisql.aio.connect(**server_kwargs(host="127.0.0.1", port=relay.port, cancel_timeout=0.6))
        cur = conn.cursor()
        task = asyncio.ensure_future(cur.execute("SELECT SLEEP(8)"))
        await asyncio.sleep(0.2)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.monotonic() - start
        assert 0.5 <= took < 2.3, took
        assert not conn.open
        conn.close()

    try:
        asyncio.run(main())
    finally:
        relay.close()


def _psycopg2_style(raises):
    # A wait callback as psycopg2's contract has them; raises(n) says whether its n-th
    # wait (from 1) raises Interrupt instead of waiting.
    import select

    waits = []

    def cb(conn):
        while True:
            state = conn.poll()
            if state == ambisql.POLL_OK:
                return
            waits.append(state)
            if raises(len(waits)):
                raise Interrupt(len(waits))
            p = select.poll()
            p.register(conn.fileno(), select.POLLIN if state == ambisql.POLL_READ else select.POLLOUT)
            p.poll()

    return cb, waits


def test_a_wait_callback_that_raises_gets_its_command_killed_and_drained_through_it():
    # The one driver's rule for any waiter: the first interruption kills the command, whose
    # answer is read through the same callback; the connection stays usable.
    marker = "py_cb_" + uuid.uuid4().hex[:8]
    conn = ambisql.connect(**server_kwargs())
    cb, waits = _psycopg2_style(lambda n: n == 1)
    ambisql.set_wait_callback(cb)
    try:
        cur = conn.cursor()
        with pytest.raises(Interrupt):
            cur.execute("SELECT SLEEP(10) /* %s */" % marker)
        assert ended(marker), (waits, conn.open)
        assert len(waits) > 1, ("the cancellation waited through the callback", waits)
        cur.execute("SELECT 1")
        assert cur.fetchall() == ((1,),)
    finally:
        ambisql.set_wait_callback(None)
        conn.close()


def test_a_wait_callback_interrupted_again_while_the_kill_runs_closes_the_connection():
    conn = ambisql.connect(**server_kwargs())
    cb, waits = _psycopg2_style(lambda n: True)
    ambisql.set_wait_callback(cb)
    try:
        with pytest.raises(Interrupt) as e:
            conn.cursor().execute("SELECT SLEEP(10)")
        assert e.value.args == (2,), "the second interruption goes on"
        assert isinstance(e.value.__context__, Interrupt) and e.value.__context__.args == (1,)
        assert not conn.open
    finally:
        ambisql.set_wait_callback(None)
        conn.close()
