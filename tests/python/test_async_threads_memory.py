"""psycopg2-style async connections driven by selectors; the GIL released while waiting;
memory flat over many queries and a million streamed rows."""
import resource
import selectors
import signal
import threading
import time

import pytest

import ambisql

from conftest import server_kwargs


def test_async_connections_from_one_selector():
    sel = selectors.DefaultSelector()
    conns = [ambisql.connect(async_=True, **server_kwargs()) for _ in range(10)]
    stage = {}
    results = {}

    def advance(c):
        while True:
            state = c.poll()
            if state == ambisql.POLL_OK:
                if stage[c] == "connect":
                    stage[c] = "query"
                    cur = c.cursor()
                    cur.execute("SELECT SLEEP(0.5), %s", (id(c) % 1000,))
                    stage[c] = cur
                    continue
                cur = stage[c]
                results[c] = cur.fetchone()
                return
            events = selectors.EVENT_READ if state == ambisql.POLL_READ else selectors.EVENT_WRITE
            try:
                sel.modify(c.fileno(), events, c)
            except KeyError:
                sel.register(c.fileno(), events, c)
            return

    t0 = time.time()
    for c in conns:
        stage[c] = "connect"
        advance(c)
    while len(results) < len(conns):
        for key, _ in sel.select(timeout=5):
            c = key.data
            sel.unregister(key.fd)
            advance(c)
    assert time.time() - t0 < 2.0, "ten SLEEP(0.5) ran concurrently on one thread"
    for c in conns:
        assert results[c] == (0, id(c) % 1000)
        assert not c.isexecuting()
        c.close()


def test_async_cancel():
    c = ambisql.connect(async_=True, **server_kwargs())
    while c.poll() != ambisql.POLL_OK:
        time.sleep(0.001)
    cur = c.cursor()
    cur.execute("SELECT SLEEP(5)")
    assert c.isexecuting()
    c.poll()
    c.cancel()
    t0 = time.time()
    try:
        while c.poll() != ambisql.POLL_OK:
            time.sleep(0.005)
        raise AssertionError("not cancelled")
    except ambisql.OperationalError as e:
        assert e.args[0] == 1317
    assert time.time() - t0 < 2
    cur.execute("SELECT 3")
    while c.poll() != ambisql.POLL_OK:
        time.sleep(0.001)
    assert cur.fetchone() == (3,)


def test_threads_run_in_parallel():
    def one():
        c = ambisql.connect(**server_kwargs())
        c.cursor().execute("SELECT SLEEP(0.5)")
        c.close()

    threads = [threading.Thread(target=one) for _ in range(8)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.time() - t0 < 2.0, "the GIL was held while waiting"


def test_a_connection_closed_from_another_thread_mid_query_fails_that_thread_at_once():
    # Sharing a connection between threads is the caller's error (threadsafety 1), but
    # closing one from a watchdog thread is how some stop a query that runs too long: the
    # waiting thread fails with a lost connection at once (it used to sleep on the closed
    # socket's number until the server answered, the connection freed under it).
    c = ambisql.connect(**server_kwargs())
    got = []

    def query():
        try:
            cur = c.cursor()
            cur.execute("SELECT SLEEP(5)")
            got.append(cur.fetchall())
        except ambisql.Error as e:
            got.append((type(e).__name__, e.args[0]))

    t = threading.Thread(target=query)
    t.start()
    time.sleep(0.3)
    t0 = time.time()
    c.close()
    t.join(10)
    assert got == [("OperationalError", 2013)], got
    assert time.time() - t0 < 1.0
    assert not c.open
    with pytest.raises(ambisql.InterfaceError):
        c.cursor()


def test_a_signal_handler_may_close_the_connection_its_thread_waits_on():
    # The handler runs in the waiting thread, inside its wait (graceful shutdown on SIGTERM
    # closing what is open): the query fails with 2013 at once. (The first version of the
    # thread-safe close() deadlocked here, the thread re-taking its own lock.)
    c = ambisql.connect(**server_kwargs())
    old = signal.signal(signal.SIGALRM, lambda *_: c.close())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        t0 = time.time()
        with pytest.raises(ambisql.OperationalError) as e:
            c.cursor().execute("SELECT SLEEP(5)")
        assert e.value.args[0] == 2013
        assert time.time() - t0 < 2.0
        assert not c.open
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_another_threads_calls_on_a_connection_a_thread_waits_on_get_a_clear_error():
    c = ambisql.connect(**server_kwargs())
    got, errors = [], []

    def query():
        cur = c.cursor()
        cur.execute("SELECT SLEEP(0.6), 'first'")
        got.append(cur.fetchall())

    t = threading.Thread(target=query)
    t.start()
    time.sleep(0.2)
    raw = c._c  # the core's connection under the Python object, as a second cursor reaches it
    for call in (lambda: c.cursor().execute("SELECT 2"), lambda: raw.poll(), lambda: raw.fileno(),
                 lambda: raw.connection_id, lambda: raw.cancel(), lambda: c.ping()):
        try:
            call()
            errors.append(None)
        except ambisql.Error as e:
            errors.append((type(e).__name__, e.args[0]))
    assert raw.busy and c.open
    t.join(5)
    assert errors == [("ProgrammingError", 2014)] * 6, errors
    assert got == [((0, "first"),)]
    cur = c.cursor()
    cur.execute("SELECT 'in step'")
    assert cur.fetchone() == ("in step",)


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20


def test_memory_flat_over_many_queries_and_a_million_streamed_rows():
    c = ambisql.connect(**server_kwargs())
    cur = c.cursor()
    for _ in range(5000):  # warm up
        cur.execute("SELECT %s, 'abc', 1.5", (1,))
        cur.fetchall()
    before = rss_mib()
    for i in range(100000):
        cur.execute("SELECT %s, 'abc', 1.5", (i,))
        cur.fetchall()
    grown = rss_mib() - before
    assert grown < 4, "RSS grew %.1f MiB over 100k queries" % grown
    ss = c.cursor(ambisql.SSCursor)
    ss.execute("SELECT seq, REPEAT('x', 50) FROM seq_1_to_1000000")
    before = rss_mib()
    n = 0
    for _ in ss:
        n += 1
    assert n == 1000000
    grown = rss_mib() - before
    assert grown < 8, "RSS grew %.1f MiB streaming a million rows" % grown
    c.close()


def test_parameters_and_results_hold_no_references():
    import sys
    c = ambisql.connect(**server_kwargs())
    cur = c.cursor()
    p = cur  # a prepared cursor binds (and keeps) references while it runs
    marker = "a parameter string " + "x" * 50
    before = sys.getrefcount(marker)
    for _ in range(1000):
        cur.execute("SELECT %s", (marker,))
        cur.fetchall()
    pc = c.cursor(prepared=True)
    for _ in range(1000):
        pc.execute("SELECT %s", (marker,))
        pc.fetchall()
    pc.executemany("SELECT %s", [(marker,)] * 10)
    assert sys.getrefcount(marker) == before
    cur.execute("SELECT 'a value of its own'")
    row = cur.fetchone()
    value = row[0]
    held = sys.getrefcount(row), sys.getrefcount(value)
    cur.execute("SELECT 'next'")  # the cursor lets go of the earlier rows
    cur.fetchall()
    assert (sys.getrefcount(row), sys.getrefcount(value)) == (held[0] - 1, held[1])
    del p
    c.close()


def test_the_selectors_example_runs():
    import os
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    example = os.path.join(here, "..", "..", "python", "examples", "selectors_demo.py")
    url = "mysql://ambisql:%s@127.0.0.1:%s/ambisql_test?ssl-mode=disabled" % (
        os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), os.environ["AMBISQL_TEST_PORT"])
    p = subprocess.run([sys.executable, example, url], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    secs = float(p.stdout.strip().splitlines()[-1].split(" in ")[1].split()[0])
    assert secs < 2.5, p.stdout


def test_a_wait_callback_of_ones_own_drives_queries_and_one_that_quits_early_gets_an_error():
    # psycopg2's contract: the callback loops poll() until POLL_OK. One that does gets the
    # results; one that returns before (a bug in it) gets ProgrammingError, where it used
    # to get whatever half of the result had arrived, as if the query were done.
    import select

    def psycopg2_style(conn):
        while True:
            state = conn.poll()
            if state == ambisql.POLL_OK:
                return
            events = select.POLLIN if state == ambisql.POLL_READ else select.POLLOUT
            p = select.poll()
            p.register(conn.fileno(), events)
            p.poll()

    conn = ambisql.connect(**server_kwargs())
    try:
        ambisql.set_wait_callback(psycopg2_style)
        cur = conn.cursor()
        cur.execute("SELECT SLEEP(0.1), 7")
        assert cur.fetchall() == ((0, 7),)
        ambisql.set_wait_callback(lambda conn: None)
        t0 = time.monotonic()
        try:
            cur.execute("SELECT SLEEP(0.3), 8")
        except ambisql.ProgrammingError as e:
            assert "POLL_OK" in str(e)
        else:
            raise AssertionError("no error from a callback that did not wait")
        # (the command was cancelled through the same callback; a fresh connection works)
    finally:
        ambisql.set_wait_callback(None)
        conn.close()
    other = ambisql.connect(**server_kwargs())
    c = other.cursor()
    c.execute("SELECT 9")
    assert c.fetchall() == ((9,),)
    other.close()
    assert time.monotonic() - t0 < 5
