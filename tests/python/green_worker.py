"""Run by test_green.py in a process of its own (monkey patching is per process):
    green_worker.py gevent|eventlet SCENARIO
prints one JSON line with what it measured."""
import json
import os
import sys
import time

lib, scenario = sys.argv[1], sys.argv[2]
if lib == "gevent":
    from gevent import monkey

    monkey.patch_all()
    import gevent

    def spawn(fn, *a):
        return gevent.spawn(fn, *a)

    def joinall(gs):
        gevent.joinall(gs, raise_error=True)

    def timeout(seconds):
        return gevent.Timeout(seconds)

    TimeoutError_ = gevent.Timeout
else:
    import eventlet

    eventlet.monkey_patch()

    def spawn(fn, *a):
        return eventlet.spawn(fn, *a)

    def joinall(gs):
        for g in gs:
            g.wait()

    def timeout(seconds):
        return eventlet.Timeout(seconds)

    TimeoutError_ = eventlet.Timeout

import ambisql
import ambisql.green

if scenario == "auto":  # monkey patching alone: the first connect picks the hub's callback
    scenario = "sleeps"
elif scenario == "auto_declined":  # set_wait_callback(None) first: blocking waits stay
    ambisql.set_wait_callback(None)
    scenario = "sleeps"
else:
    getattr(ambisql.green, "patch_" + lib)()
kw = dict(host="127.0.0.1", port=int(os.environ["AMBISQL_TEST_PORT"]), user="ambisql",
          password=os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), database="ambisql_test",
          ssl_mode="disabled")
out = {}


# Proxies, each in a process of its own (outside the hub), printing the port they listen
# on. A connection's bytes are pumped both ways; pump(a, b, deafen=True) stops reading from
# `a` at its first chunk of 16 kB or more (a large query): the client's send then fills the
# socket's buffers and waits to write.
_PROXY_HEAD = r"""
import socket, sys, threading
host, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print(srv.getsockname()[1], flush=True)

def pump(a, b, deafen=False):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if deafen and len(d) >= 16384:
                threading.Event().wait()  # never reads again
            b.sendall(d)
    except OSError:
        pass

def forward(c, deafen=False):
    up = socket.create_connection((host, port))
    threading.Thread(target=pump, args=(c, up, deafen), daemon=True).start()
    threading.Thread(target=pump, args=(up, c), daemon=True).start()
"""

# Forwards the first connection; accepts later ones and never answers them.
STALLING_PROXY = _PROXY_HEAD + r"""
held = []
forward(srv.accept()[0])
while True:
    held.append(srv.accept()[0])
"""

# Forwards one connection until the client sends a large query.
DEAF_PROXY = _PROXY_HEAD + r"""
forward(srv.accept()[0], deafen=True)
threading.Event().wait()
"""


def gap_ticker(nap, gaps, done):
    # A greenlet's body that records the gaps between its naps until done[0]: how long
    # the hub stopped serving other greenlets.
    def ticker():
        last = time.time()
        while not done[0]:
            nap(0.02)
            now = time.time()
            gaps.append(now - last)
            last = now

    return ticker


def closed_meanwhile(c, work, close_at):
    # Runs work() in a greenlet, closes `c` from this one after close_at seconds: what
    # work() raised, and how long after the close it did.
    got, nap = [], (gevent.sleep if lib == "gevent" else eventlet.sleep)

    def run():
        try:
            work()
            got.append("returned")
        except BaseException as e:  # (a Timeout too)
            got.append([type(e).__name__] + ([e.args[0]] if isinstance(e, ambisql.Error) else []))

    spawn(run)
    nap(close_at)
    t0 = time.time()
    c.close()
    while not got and time.time() < t0 + 8.0:
        nap(0.02)
    out["woke_after"] = round(time.time() - t0, 2)
    out["got"] = got


def time_out_a_query(conn_kw, tag):
    # A query timed out by the green-thread library: is it killed on the server, and is
    # the connection usable after?
    c = ambisql.connect(**conn_kw)
    cur = c.cursor()
    t0 = time.time()
    try:
        with timeout(0.3):
            cur.execute("SELECT SLEEP(5) /* %s */" % tag)
        out["timed_out"] = False
    except TimeoutError_:
        out["timed_out"] = True
    out["elapsed"] = time.time() - t0
    try:
        cur.execute("SELECT 'usable'")
        out["after"] = cur.fetchone()[0]
    except ambisql.Error as e:
        out["after"] = [type(e).__name__, e.args[0]]
    admin = ambisql.connect(**kw)
    ac = admin.cursor()
    ac.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
               ("%" + tag + "%",))
    out["still_running"] = ac.fetchone()[0]


if scenario == "sleeps":
    n, secs = int(sys.argv[3]), float(sys.argv[4])
    ticks = [0]

    def ticker():  # the hub keeps running other greenlets meanwhile
        end = time.time() + n * 0  # noqa
        while not done[0]:
            ticks[0] += 1
            (gevent.sleep if lib == "gevent" else eventlet.sleep)(0.05)

    done = [False]

    def one(i):
        c = ambisql.connect(**kw)
        cur = c.cursor()
        cur.execute("SELECT SLEEP(%s), %s", (secs, i))
        r = cur.fetchone()
        c.close()
        assert r == (0, i), r

    t = spawn(ticker)
    t0 = time.time()
    joinall([spawn(one, i) for i in range(n)])
    out["elapsed"] = time.time() - t0
    done[0] = True
    out["ticks"] = ticks[0]
elif scenario == "timeout":
    time_out_a_query(kw, "green-timeout")
elif scenario == "two_on_one":
    c = ambisql.connect(**kw)
    errors = []

    def use(i):
        try:
            cur = c.cursor()
            cur.execute("SELECT SLEEP(0.3), %s", (i,))
            cur.fetchall()
        except ambisql.Error as e:
            errors.append([type(e).__name__, e.args[0]])

    joinall([spawn(use, i) for i in range(2)])
    out["errors"] = errors
    cur = c.cursor()
    cur.execute("SELECT 'in step'")
    out["after"] = cur.fetchone()[0]
elif scenario == "closed_while_waiting":  # another greenlet closes the connection mid-query
    c = ambisql.connect(**kw)
    closed_meanwhile(c, lambda: c.cursor().execute("SELECT SLEEP(5)"), 0.3)
    other = ambisql.connect(**kw)  # the hub and the driver serve the next connection
    cur = other.cursor()
    cur.execute("SELECT 'after'")
    out["after"] = cur.fetchone()[0]
elif scenario == "closed_while_writing":  # closed while its query waits to be sent
    import subprocess
    proxy = subprocess.Popen([sys.executable, "-c", DEAF_PROXY, kw["host"], str(kw["port"])],
                             stdout=subprocess.PIPE, text=True)
    c = ambisql.connect(**dict(kw, port=int(proxy.stdout.readline()), write_timeout=6))

    def big_query():
        c.cursor().execute("SELECT LENGTH(%s)", ("x" * 32_000_000,))

    closed_meanwhile(c, big_query, 0.5)
    proxy.kill()
elif scenario == "closed_while_killing":  # closed while its timed-out query's KILL connects
    import subprocess
    proxy = subprocess.Popen([sys.executable, "-c", STALLING_PROXY, kw["host"], str(kw["port"])],
                             stdout=subprocess.PIPE, text=True)
    c = ambisql.connect(**dict(kw, port=int(proxy.stdout.readline()), connect_timeout=6))

    def timed_out_query():
        with timeout(0.3):
            c.cursor().execute("SELECT SLEEP(5)")

    closed_meanwhile(c, timed_out_query, 0.8)  # its KILL's connect stalls from 0.3 s on
    proxy.kill()
elif scenario == "closed_while_reconnecting":  # closed while ping(reconnect=True) connects anew
    import subprocess
    proxy = subprocess.Popen([sys.executable, "-c", STALLING_PROXY, kw["host"], str(kw["port"])],
                             stdout=subprocess.PIPE, text=True)
    c = ambisql.connect(**dict(kw, port=int(proxy.stdout.readline()), connect_timeout=6))
    c._c.close()  # (its session gone under it: the ping reconnects, through the stalling proxy)

    def reconnect():
        c.ping(reconnect=True)

    closed_meanwhile(c, reconnect, 0.5)
    out["open"] = c.open
    proxy.kill()
elif scenario == "thrown_then_closed":  # resumed by a throw before the close's wake-up
    c = ambisql.connect(**kw)
    got = []
    nap = gevent.sleep if lib == "gevent" else eventlet.sleep

    def query():
        try:
            cur = c.cursor()
            cur.execute("SELECT SLEEP(5)")
        except BaseException as e:
            got.append(type(e).__name__)
        t0 = time.time()
        try:
            nap(0.3)  # a switch meant for the query's wait must not cut this short
            got.append(round(time.time() - t0, 1))
        except BaseException as e:
            got.append(type(e).__name__)

    g = spawn(query)
    nap(0.2)
    if lib == "gevent":
        g.kill(ValueError, block=False)
    else:
        eventlet.hubs.get_hub().schedule_call_global(0, g.throw, ValueError())
    c.close()
    nap(1.0)
    out["got"] = got
elif scenario == "killed_twice":  # killed again while its KILL waits on a server that stalls
    import subprocess
    # A proxy (its own process, outside the hub) that forwards the first connection to the
    # test server and accepts later ones without ever answering: the KILL's side
    # connection then waits for its connect timeout.
    proxy = subprocess.Popen([sys.executable, "-c", STALLING_PROXY, kw["host"], str(kw["port"])],
                             stdout=subprocess.PIPE, text=True)
    port = int(proxy.stdout.readline())
    nap = gevent.sleep if lib == "gevent" else eventlet.sleep
    c = ambisql.connect(**dict(kw, port=port, connect_timeout=3))
    gaps, got, done = [], [], [False]

    ticker = gap_ticker(nap, gaps, done)

    def query():
        try:
            with timeout(0.3):
                cur = c.cursor()
                cur.execute("SELECT SLEEP(5)")
        except BaseException as e:
            got.append(type(e).__name__)

    t = spawn(ticker)
    g = spawn(query)
    nap(0.6)  # timed out at 0.3 s; its KILL's connect stalls
    t0 = time.time()
    g.kill() if lib == "gevent" else g.kill()
    out["kill_took"] = time.time() - t0
    nap(0.3)
    done[0] = True
    t.wait() if lib == "eventlet" else t.join()
    out["longest_gap"] = max(gaps)
    out["got"] = got
    out["open"] = c.open
    proxy.kill()
elif scenario == "kill_gives_up":  # a KILL the server never answers, bounded by cancel_timeout
    import subprocess
    proxy = subprocess.Popen([sys.executable, "-c", STALLING_PROXY, kw["host"], str(kw["port"])],
                             stdout=subprocess.PIPE, text=True)
    port = int(proxy.stdout.readline())
    nap = gevent.sleep if lib == "gevent" else eventlet.sleep
    c = ambisql.connect(**dict(kw, port=port, connect_timeout=3, cancel_timeout=0.5))
    gaps, done = [], [False]

    ticker = gap_ticker(nap, gaps, done)

    t = spawn(ticker)
    t0 = time.time()
    try:
        with timeout(0.3):
            c.cursor().execute("SELECT SLEEP(5)")
        out["got"] = "nothing"
    except BaseException as e:
        out["got"] = type(e).__name__
    out["elapsed"] = time.time() - t0
    done[0] = True
    t.wait() if lib == "eventlet" else t.join()
    out["longest_gap"] = max(gaps)
    out["open"] = c.open
    proxy.kill()
elif scenario == "from_hub":  # gevent: a query from a hub callback cannot wait there
    c = ambisql.connect(**kw)
    result = []

    def in_hub():
        try:
            cur = c.cursor()
            cur.execute("SELECT SLEEP(0.2)")
            cur.fetchall()
            result.append("ran")
        except BaseException as e:
            result.append(type(e).__name__)

    gevent.get_hub().loop.run_callback(in_hub)
    gevent.sleep(0.5)
    out["result"] = result
    cur = c.cursor()
    cur.execute("SELECT 'in step'")
    out["after"] = cur.fetchone()[0]
elif scenario == "switch_out":  # gevent: a greenlet's switch_out hook runs on each wait
    c = ambisql.connect(**kw)
    calls = []

    class Hooked(gevent.Greenlet):
        def switch_out(self):
            calls.append(1)

    def run():
        cur = c.cursor()
        cur.execute("SELECT SLEEP(0.05)")
        return cur.fetchall()[0][0]

    g = Hooked(run)
    g.start()
    out["result"] = g.get()
    out["switch_outs"] = len(calls)
elif scenario == "killed_between":  # the server closes the socket between two queries
    sleep = gevent.sleep if lib == "gevent" else eventlet.sleep
    c = ambisql.connect(**kw)
    cur = c.cursor()
    cur.execute("SELECT CONNECTION_ID()")
    victim = cur.fetchone()[0]
    admin = ambisql.connect(**kw)
    admin.cursor().execute("KILL CONNECTION %s" % victim)
    sleep(0.1)
    c0, t0 = time.process_time(), time.time()
    sleep(0.5)  # the socket is readable (EOF) with nobody waiting: the hub must not spin
    out["idle_cpu_share"] = (time.process_time() - c0) / (time.time() - t0)
    try:
        cur.execute("SELECT 1")
        out["error"] = None
    except ambisql.OperationalError as e:
        out["error"] = e.args[0]
    fd = c._c.fileno() if c._c.is_open else None
    other = ambisql.connect(**kw)  # while the failed one is still around, under its old number
    oc = other.cursor()
    oc.execute("SELECT 'other'")
    out["other"] = [oc.fetchone()[0], fd]
    c.ping(reconnect=True)
    cur = c.cursor()
    cur.execute("SELECT 'reconnected'")
    out["after"] = cur.fetchone()[0]
elif scenario == "fd_reuse":  # a closed connection's descriptor number, reused by others
    import socket
    sleep = gevent.sleep if lib == "gevent" else eventlet.sleep
    c = ambisql.connect(**kw)
    cur = c.cursor()
    cur.execute("SELECT 1")
    fd = c.fileno()
    c.close()
    c2 = ambisql.connect(**kw)  # a new connection under the same number
    out["reused"] = [c2.fileno() == fd]
    cur = c2.cursor()
    cur.execute("SELECT 'second'")
    out["after"] = cur.fetchone()[0]
    c2.close()
    a, b = socket.socketpair()  # green sockets; the lowest free numbers, fd among them
    out["reused"].append(fd in (a.fileno(), b.fileno()))
    got = []

    def reader():
        got.append(a.recv(16).decode())

    g = spawn(reader)
    sleep(0.05)
    b.sendall(b"through the hub")
    joinall([g])
    out["got"] = got
elif scenario == "read_timeout":  # the connection's own read timeout, waited through the hub
    sleep = gevent.sleep if lib == "gevent" else eventlet.sleep
    ticks = [0]
    done = [False]

    def ticker():
        while not done[0]:
            ticks[0] += 1
            sleep(0.05)

    t = spawn(ticker)
    c = ambisql.connect(read_timeout=0.4, **kw)
    cur = c.cursor()
    t0 = time.time()
    try:
        cur.execute("SELECT SLEEP(3)")
        out["error"] = None
    except ambisql.OperationalError as e:
        out["error"] = e.args[0]
    out["elapsed"] = time.time() - t0
    done[0] = True
    out["ticks"] = ticks[0]
    c2 = ambisql.connect(**kw)
    cur = c2.cursor()
    cur.execute("SELECT 'fine'")
    out["after"] = cur.fetchone()[0]
elif scenario == "kill_via_hub":  # a timed-out query's KILL also waits through the hub
    # The connection (and so the side connection that sends the KILL) goes through a proxy
    # that is a pair of greenlets in this process: a KILL that blocked the hub could not
    # get through it.
    import socket
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)

    from pump import pump

    def proxy():
        while True:
            client, _ = lsock.accept()
            upstream = socket.create_connection(("127.0.0.1", kw["port"]))
            spawn(pump, client, upstream)
            spawn(pump, upstream, client)

    spawn(proxy)
    time_out_a_query(dict(kw, port=lsock.getsockname()[1]), "green-kill-via-hub")
elif scenario == "tls":  # TLS: records OpenSSL has decrypted ahead must not be waited for
    tls = dict(kw, ssl_mode="verify_ca", ssl_ca=os.environ["AMBISQL_TEST_CA"])
    results = []

    def one(i):
        c = ambisql.connect(**tls)
        cur = c.cursor()
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        version = cur.fetchone()[1]
        for _ in range(3):
            cur.execute("SELECT REPEAT(CHAR(65 + MOD(seq, 26) USING utf8mb4), 20000), seq FROM seq_1_to_200")
            rows = cur.fetchall()
            assert [r[1] for r in rows] == list(range(1, 201))
            assert all(r[0] == chr(65 + r[1] % 26) * 20000 for r in rows)
        cur.execute("SELECT SLEEP(0.5)")
        cur.fetchall()
        results.append(version)
        c.close()

    t0 = time.time()
    joinall([spawn(one, i) for i in range(10)])
    out["elapsed"] = time.time() - t0
    out["versions"] = sorted(set(results))
    out["done"] = len(results)
elif scenario == "partition":  # the link to the server goes down mid-query (test_partition.py)
    from blackhole import Blackhole

    limit = float(sys.argv[3])
    link = Blackhole()
    if link.why:
        out["skipped"] = link.why
    else:
        c = ambisql.connect(**dict(kw, host=link.host, port=link.port, connect_timeout=limit, read_timeout=limit,
                                   write_timeout=limit, keepalive=False))
        cur = c.cursor()
        cur.execute("SELECT 1")
        ticks = [0]

        def ticker():
            while True:
                time.sleep(0.1)
                ticks[0] += 1

        def cut():
            time.sleep(0.3)
            link.down()

        tk = spawn(ticker)
        spawn(cut)
        t0 = time.time()
        try:
            cur.execute("SELECT SLEEP(5)")
            out["error"] = None
        except Exception as e:
            out["error"] = type(e).__name__
        out["took"] = time.time() - t0
        out["open"] = c.open
        out["ticks"] = ticks[0]
        tk.kill()
        link.close()
print(json.dumps(out))
