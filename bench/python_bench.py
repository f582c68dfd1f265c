"""Python benchmarks: ambisql against MySQLdb (C, libmariadb underneath) and PyMySQL (pure
Python), Debian's packages, same server, same run; drivers alternate over rounds and the
median is reported. Run by scripts/bench (workload `python`), or:
    /usr/bin/python3 bench/python_bench.py [--json out.json] [--rounds N] [--only a,b]
Workloads (the sbtest tables scripts/bench creates):
  py_point_select     SELECT c FROM sbtest1 WHERE id = %s, one connection: qps, client CPU/query
  py_fetchall         the 100k-row sbtest_scan table into tuples: rows/s (median of 5 per round)
  py_executemany      INSERT of 4-column rows with executemany: rows/s
  py_gevent_sleep     30 concurrent SELECT SLEEP(0.1) under gevent: wall seconds
  py_gevent_c16       16 greenlets doing point selects under gevent: qps
  py_eventlet_sleep / py_eventlet_c16: the same under eventlet
                      (beside the c16 rows, when AMBISQL_BENCH_BIN names the C++ bench, as
                      scripts/bench does, in the same rounds: libmariadb in 16 threads, about
                      the most any client gets from this server with 16 connections; and
                      ambisql's C++ poll driver with the 16 on one thread, as a hub has them:
                      the most a one-thread client gets here at C++'s cost per query); and
                      raw-socket: no driver, the queries' bytes on the 16 established
                      connections, each greenlet waiting through the hub: the most a Python
                      client gets under that hub)
  py_instructions     user-space instructions per point select (valgrind's callgrind, when
                      installed: the client's own cost without the machine's noise or the
                      kernel's share), blocking, under gevent and under eventlet
The green workloads run in child processes (monkey patching is per process).
AMBISQL_BENCH_TCP=1: over loopback TCP instead of the unix socket, without TLS for every
driver (AMBISQL_BENCH_TLS=1: with TLS for every driver)."""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

DRIVERS = ["ambisql", "MySQLdb", "pymysql"]


def connect(driver, **extra):
    kw = dict(host="127.0.0.1", port=int(os.environ["AMBISQL_TEST_PORT"]), user="ambisql",
              password=os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), database="ambisql_test")
    tcp = os.environ.get("AMBISQL_BENCH_TCP") == "1"
    tls = tcp and os.environ.get("AMBISQL_BENCH_TLS") == "1"  # TLS for every driver, else none
    if not tcp:
        kw.pop("host")
        kw.pop("port")
        kw["unix_socket"] = os.environ["AMBISQL_TEST_SOCKET"]
    kw.update(extra)
    ca = os.environ.get("AMBISQL_TEST_CA")
    if driver == "ambisql":
        import ambisql
        # (ambisql's default over TCP is TLS when the server offers it; the others' is not)
        return ambisql.connect(autocommit=True, ssl_mode="verify_ca" if tls else "disabled", ssl_ca=ca if tls else None,
                               **kw)
    if tls:
        kw["ssl"] = {"ca": ca, "check_hostname": False}
    if driver == "MySQLdb":
        import MySQLdb
        kw["passwd"] = kw.pop("password")
        kw["db"] = kw.pop("database")
        return MySQLdb.connect(autocommit=True, **kw)
    import pymysql
    return pymysql.connect(autocommit=True, **kw)


def cpu():
    # the process's CPU time, user and system, from the scheduler's own accounting (ns
    # resolution; os.times() counts 10 ms ticks)
    return time.process_time()


def server_load():
    """(CPU seconds, sleeps) of the test server so far, or (-1, -1) when unknown: on a
    2-core machine shared with the server, what the server spends per query bounds every
    driver's qps. Sleeps: its threads' voluntary context switches. A server thread that
    finds no query waiting when it is done with the last one sleeps, and waking it is a
    large part of its CPU per query here; a client that sends the next query before the
    thread has gone to sleep saves that."""
    try:
        pid = open(os.path.join(os.environ["AMBISQL_TEST_SERVER_DIR"], "mysqld.pid")).read().strip()
        fields = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
        sleeps = 0
        for task in os.listdir("/proc/%s/task" % pid):
            try:
                with open("/proc/%s/task/%s/status" % (pid, task)) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            sleeps += int(line.split()[1])
            except OSError:  # (a thread that ended meanwhile)
                pass
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), sleeps
    except (KeyError, OSError, ValueError, IndexError):
        return -1.0, -1


def server_per_query(before, n):
    """The server's CPU and sleeps per query since `before` (a server_load()), as metrics."""
    cpu_s, sleeps = server_load()
    if before[0] < 0 or cpu_s < 0 or n <= 0:
        return {}
    return {"server_cpu_s_per_query": (cpu_s - before[0]) / n, "server_sleeps_per_query": (sleeps - before[1]) / n}


def raw_answer(recv):
    """One point select's answer (a one-column result), read with recv() (the next bytes)
    to its terminating packet: its bytes. For the clients with no driver."""
    buf, at, k, rows = b"", 0, 0, 0
    while True:
        n = int.from_bytes(buf[at : at + 3], "little")
        if len(buf) < at + 4 or len(buf) < at + 4 + n:
            chunk = recv()
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
            continue
        p, at, k = buf[at + 4 : at + 4 + n], at + 4 + n, k + 1
        if k == 1:
            if p[0] != 1:  # the column count (and MariaDB's metadata flag)
                raise RuntimeError("expected one column")
        elif k == 2:
            pass  # its definition
        elif p[0] == 0xFE and n < 9:  # EOF / OK: after the definition (without
            if rows:  # CLIENT_DEPRECATE_EOF) or at the end
                return buf
        elif p[0] == 0xFF:
            raise RuntimeError(p[3:].decode())
        else:
            rows += 1


def point_select(driver, seconds=1.0):
    c = connect(driver)
    cur = c.cursor()
    ids = [random.randint(1, 10000) for _ in range(4096)]
    for i in range(200):
        cur.execute("SELECT c FROM sbtest1 WHERE id = %s", (ids[i],))
        cur.fetchall()
    s0 = server_load()
    n, t0, c0 = 0, time.perf_counter(), cpu()
    end = t0 + seconds
    while True:
        for k in range(64):
            cur.execute("SELECT c FROM sbtest1 WHERE id = %s", (ids[(n + k) & 4095],))
            cur.fetchall()
        n += 64
        if time.perf_counter() >= end:
            break
    wall, used = time.perf_counter() - t0, cpu() - c0
    out = {"qps": n / wall, "client_cpu_s_per_query": used / n, **server_per_query(s0, n)}
    c.close()
    return out


def fetchall(driver, times=5):
    # The median of `times` fetches (one is over in a tenth of a second, and now and then
    # one takes twice as long as the others, for every driver).
    c = connect(driver)
    cur = c.cursor()
    cur.execute("SELECT * FROM sbtest_scan")
    cur.fetchall()
    runs = []
    for _ in range(times):
        t0, c0 = time.perf_counter(), cpu()
        cur.execute("SELECT * FROM sbtest_scan")
        rows = cur.fetchall()
        wall, used = time.perf_counter() - t0, cpu() - c0
        assert len(rows) == 100000 and isinstance(rows[0], tuple)
        runs.append((len(rows) / wall, used / len(rows)))
        rows = None
    c.close()
    return {"rows_per_s": statistics.median(r[0] for r in runs),
            "client_cpu_s_per_row": statistics.median(r[1] for r in runs)}


def executemany(driver, rows=20000):
    c = connect(driver)
    cur = c.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS py_bench_bulk (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, "
                "c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL) ENGINE=InnoDB")
    cur.execute("TRUNCATE TABLE py_bench_bulk")
    data = [(i, i % 1000, "%011d-" % i * 10, "%011d-" % (i * 7) * 5) for i in range(rows)]
    data = [(a, b, c_[:119], d[:59]) for a, b, c_, d in data]
    t0, c0 = time.perf_counter(), cpu()
    cur.executemany("INSERT INTO py_bench_bulk (id, k, c, pad) VALUES (%s, %s, %s, %s)", data)
    wall, used = time.perf_counter() - t0, cpu() - c0
    cur.execute("SELECT COUNT(*) FROM py_bench_bulk")
    assert cur.fetchone()[0] == rows
    c.close()
    return {"rows_per_s": rows / wall, "client_cpu_s_per_row": used / rows}


GREEN_CHILD = r'''
import json, os, random, sys, time
lib, driver, what = sys.argv[1], sys.argv[2], sys.argv[3]
if lib == "gevent":
    from gevent import monkey; monkey.patch_all()
    import gevent
    spawn, joinall = gevent.spawn, lambda gs: gevent.joinall(gs, raise_error=True)
else:
    import eventlet; eventlet.monkey_patch()
    spawn = eventlet.spawn
    def joinall(gs):
        for g in gs: g.wait()
sys.path.insert(0, os.path.dirname(sys.argv[4]))
import python_bench as pb
if driver == "ambisql":
    import ambisql.green
    getattr(ambisql.green, "patch_" + lib)()
if what == "sleep":
    conns = [pb.connect(driver) for _ in range(30)]
    def one(c):
        cur = c.cursor(); cur.execute("SELECT SLEEP(0.1)"); cur.fetchall()
    t0 = time.perf_counter()
    joinall([spawn(one, c) for c in conns])
    print(json.dumps({"wall_s": time.perf_counter() - t0}))
else:
    conns = [pb.connect("ambisql" if driver == "raw-socket" else driver) for _ in range(16)]
    n = [0]
    end = time.perf_counter() + 3.0  # (as long as the C client's rows beside it)
    def worker(c):
        cur = c.cursor()
        while time.perf_counter() < end:
            cur.execute("SELECT c FROM sbtest1 WHERE id = %s", (random.randint(1, 10000),))
            cur.fetchall()
            n[0] += 1
    if driver == "raw-socket":
        # No driver: the same queries' bytes on the established connection's socket (the C
        # socket module's, not patched), each greenlet waiting through the hub's own read
        # wait. A Python client under this hub cannot go faster (it sends, waits, receives
        # at least this); the answers' length is the same for every id (c is CHAR(120),
        # always 119 characters), so the whole answer is known by its length.
        import _socket, struct
        if lib == "gevent":
            hub = gevent.get_hub()
            def waiter(fd):
                w = hub.loop.io(fd, 1)
                return lambda: hub.wait(w)
        else:
            from eventlet.hubs import trampoline
            def waiter(fd):
                return lambda: trampoline(fd, read=True)
        def worker(c):
            s = _socket.socket(fileno=os.dup(c.fileno()))
            s.setblocking(False)
            wait = waiter(s.fileno())
            def ask(i):
                body = b"\x03SELECT c FROM sbtest1 WHERE id = %d" % i
                s.send(struct.pack("<I", len(body))[:3] + b"\x00" + body)
            ask(1)
            answer = pb.raw_answer(lambda: (wait(), s.recv(65536))[1])
            size = len(answer)
            while time.perf_counter() < end:
                ask(random.randint(1, 10000))
                wait()
                got = len(s.recv(65536))
                while got < size:
                    wait()
                    got += len(s.recv(65536))
                n[0] += 1
            s.close()
    c0, s0 = pb.cpu(), pb.server_load()
    t0 = time.perf_counter()
    joinall([spawn(worker, c) for c in conns])
    wall = time.perf_counter() - t0
    out = {"qps": n[0] / wall, "client_cpu_s_per_query": (pb.cpu() - c0) / max(n[0], 1)}
    out.update(pb.server_per_query(s0, n[0]))
    print(json.dumps(out))
'''


INSTR_CHILD = r'''
import os, sys
driver, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "gevent":
    from gevent import monkey; monkey.patch_all()
elif mode == "eventlet":
    import eventlet; eventlet.monkey_patch()
sys.path.insert(0, os.path.dirname(sys.argv[4]))
import python_bench as pb
if mode in ("gevent", "eventlet") and driver == "ambisql":
    import ambisql.green
    getattr(ambisql.green, "patch_" + mode)()
cur = pb.connect(driver).cursor()
for i in range(n):
    cur.execute("SELECT c FROM sbtest1 WHERE id = %s", (i % 10000 + 1,))
    cur.fetchall()
'''


def instructions(driver, mode, n=2000):
    """User-space instructions per point select."""
    return {"user_instructions_per_query": per_op_instructions(INSTR_CHILD, [driver, mode], n)}


def per_op_instructions(child, args, n):
    """callgrind's instruction count of `child` (python -c) doing n operations, less its
    count for none (start-up, import, connect), per operation. The child gets args, then
    n, then this file's path."""

    def count(k):
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
                            child] + args + [str(k), os.path.abspath(__file__)],
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-2000:])
        return int(p.stderr.split("Collected :")[1].split()[0])

    return (count(n) - count(0)) / n


# Beside the c16 rows, from the C++ bench's concurrent_point_select/c16 in the same rounds:
# the C client in 16 threads, and ambisql's C++ poll driver serving the 16 connections
# from one thread as a green-thread hub does (what any one-thread client gets here when
# its own cost per query is C++'s).
C_CLIENTS = {"libmariadb-16-threads": "libmariadb", "ambisql-c++-one-thread": "ambisql-poll"}


def c_client_c16(driver):
    # The C++ bench's concurrent_point_select/c16 with that driver only (3 s).
    cpp = C_CLIENTS[driver]
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), "ambisql-c16-%d.json" % os.getpid())
    subprocess.run([os.environ["AMBISQL_BENCH_BIN"], "--json", out, "concurrent_point_select/c16/" + cpp],
                   check=True, capture_output=True, timeout=300)
    try:
        return {r["metric"]: r["value"] for r in json.load(open(out)) if r["driver"] == cpp}
    finally:
        os.unlink(out)


def green(lib, driver, what):
    if driver in C_CLIENTS:
        return c_client_c16(driver)
    here = os.path.abspath(__file__)
    p = subprocess.run([sys.executable, "-c", GREEN_CHILD, lib, driver, what, here], capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    out_json, rounds = None, 3
    args = sys.argv[1:]
    if "--json" in args:
        out_json = args[args.index("--json") + 1]
    if "--rounds" in args:
        rounds = int(args[args.index("--rounds") + 1])
    workloads = [
        ("py_point_select", lambda d: point_select(d)),
        ("py_fetchall", fetchall),
        ("py_executemany", executemany),
        ("py_gevent_sleep", lambda d: green("gevent", d, "sleep")),
        ("py_gevent_c16", lambda d: green("gevent", d, "c16")),
        ("py_eventlet_sleep", lambda d: green("eventlet", d, "sleep")),
        ("py_eventlet_c16", lambda d: green("eventlet", d, "c16")),
    ]
    if shutil.which("valgrind"):  # deterministic: one round
        workloads += [("py_instructions", lambda d: instructions(d, "blocking")),
                      ("py_gevent_instructions", lambda d: instructions(d, "gevent")),
                      ("py_eventlet_instructions", lambda d: instructions(d, "eventlet"))]
    if "--only" in args:
        only = args[args.index("--only") + 1].split(",")
        workloads = [w for w in workloads if w[0] in only]
    rows = []
    for name, fn in workloads:
        drivers = DRIVERS + (["raw-socket"] if name.endswith("_c16") else [])
        drivers += list(C_CLIENTS) if name.endswith("_c16") and os.environ.get("AMBISQL_BENCH_BIN") else []
        samples = {d: {} for d in drivers}
        for r in range(1 if name.endswith("instructions") else rounds):
            order = drivers if r % 2 == 0 else drivers[::-1]
            for d in order:
                for metric, v in fn(d).items():
                    samples[d].setdefault(metric, []).append(v)
        for d in drivers:
            for metric, vs in samples[d].items():
                rows.append({"workload": name, "driver": d, "metric": metric, "value": statistics.median(vs)})
        base = {m: statistics.median(v) for m, v in samples["MySQLdb"].items()}
        for d in drivers:
            for metric, vs in samples[d].items():
                v = statistics.median(vs)
                ratio = v / base[metric] if base.get(metric) else float("nan")
                print("%-20s %-21s %-24s %14.6g  %5.2fx MySQLdb" % (name, d, metric, v, ratio), flush=True)
    if out_json:
        json.dump(rows, open(out_json, "w"), indent=1)


if __name__ == "__main__":
    main()
