"""asyncio and SQLAlchemy benchmarks: ambisql.aio against aiomysql, and SQLAlchemy through
mysql+ambisql_async against mysql+aiomysql and mysql+ambisql against mysql+mysqldb and
mysql+pymysql (Debian's packages), same server, same run; drivers alternate over rounds
and the median is reported. Run by scripts/bench (workload `python`), or:
    /usr/bin/python3 bench/python_async_bench.py [--json out.json] [--rounds N] [--only a,b] [--suffix S]
(--suffix: appended to the workload names, for rows of another SQLAlchemy on PYTHONPATH)
Workloads (the sbtest tables scripts/bench creates):
  aio_point_select   SELECT c FROM sbtest1 WHERE id = %s, one connection: qps (beside them,
                     ambisql-blocking: the blocking driver, no loop: one connection's limit;
                     raw-socket: no driver, the same queries as bytes on an established
                     connection, a blocking send and receive each; raw-socket-spinning: the
                     same, receiving without ever sleeping: what the round trip costs when
                     the client is not put to sleep and woken)
  aio_point_select_uvloop   the same on uvloop
  aio_c16            16 tasks, a connection each, point selects: qps
  aio_fetchall       the 100k-row sbtest_scan table into tuples: rows/s
  aio_sleep30        30 concurrent SELECT SLEEP(0.1) on one loop: wall seconds
  orm_get_async      ORM session.get() by primary key, AsyncSession: lookups/s
  core_fetch_async   a 100k-row Core select through the async engine: rows/s
  orm_get_sync       ORM session.get() by primary key, Session: lookups/s
  orm_get_sync_instructions   the same lookups' user-space instructions (valgrind's
                     callgrind, when installed: the client's cost without the machine's noise)"""
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import time

import uvloop

from python_bench import server_load, server_per_query  # (beside this file)

PW = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
SOCK = os.environ.get("AMBISQL_TEST_SOCKET")


def cpu():
    # the process's CPU time, user and system, from the scheduler's own accounting (ns
    # resolution; os.times() counts 10 ms ticks)
    return time.process_time()


async def aio_connect(driver):
    kw = dict(unix_socket=SOCK, user="ambisql", password=PW, db="ambisql_test", autocommit=True)
    if driver == "ambisql":
        import ambisql.aio
        return await ambisql.aio.connect(**kw)
    import aiomysql
    return await aiomysql.connect(**kw)


async def point_select(driver, seconds=1.0):
    if driver == "ambisql-blocking":  # the limit: the same queries with no event loop in between
        return blocking_point_select(seconds)
    if driver.startswith("raw-socket"):
        return raw_point_select(driver.endswith("spinning"), seconds)
    c = await aio_connect(driver)
    cur = await c.cursor()
    ids = [random.randint(1, 10000) for _ in range(4096)]
    for i in range(200):
        await cur.execute("SELECT c FROM sbtest1 WHERE id = %s", (ids[i],))
        await cur.fetchall()
    s0 = server_load()
    n, t0, c0 = 0, time.perf_counter(), cpu()
    end = t0 + seconds
    while True:
        for k in range(64):
            await cur.execute("SELECT c FROM sbtest1 WHERE id = %s", (ids[(n + k) & 4095],))
            await cur.fetchall()
        n += 64
        if time.perf_counter() >= end:
            break
    wall, used = time.perf_counter() - t0, cpu() - c0
    out = {"qps": n / wall, "client_cpu_s_per_query": used / n, **server_per_query(s0, n)}
    c.close()
    return out


def blocking_point_select(seconds):
    import python_bench  # (beside this file) the sync benchmark's loop, ambisql without a loop

    return python_bench.point_select("ambisql", seconds)


def raw_point_select(spin, seconds):
    # COM_QUERY packets written by hand on a connection ambisql established, each answer
    # read to its terminating packet: the round trip with no driver in it.
    import socket
    import struct

    import python_bench

    conn = python_bench.connect("ambisql")
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    sock.setblocking(True)
    flags = socket.MSG_DONTWAIT if spin else 0

    def recv():
        while True:
            try:
                return sock.recv(65536, flags)
            except BlockingIOError:
                continue

    def query(i):
        body = b"\x03SELECT c FROM sbtest1 WHERE id = %d" % i
        sock.sendall(struct.pack("<I", len(body))[:3] + b"\x00" + body)
        python_bench.raw_answer(recv)

    ids = [random.randint(1, 10000) for _ in range(4096)]
    for i in range(200):
        query(ids[i])
    s0 = server_load()
    n, t0, c0 = 0, time.perf_counter(), cpu()
    end = t0 + seconds
    while True:
        for k in range(64):
            query(ids[(n + k) & 4095])
        n += 64
        if time.perf_counter() >= end:
            break
    wall, used = time.perf_counter() - t0, cpu() - c0
    out = {"qps": n / wall, "client_cpu_s_per_query": used / n, **server_per_query(s0, n)}
    sock.close()
    conn.close()
    return out


async def c16(driver, seconds=1.0):
    conns = [await aio_connect(driver) for _ in range(16)]
    n = [0]
    end = time.perf_counter() + seconds

    async def worker(c):
        cur = await c.cursor()
        while time.perf_counter() < end:
            await cur.execute("SELECT c FROM sbtest1 WHERE id = %s", (random.randint(1, 10000),))
            await cur.fetchall()
            n[0] += 1

    s0, t0, c0 = server_load(), time.perf_counter(), cpu()
    await asyncio.gather(*(worker(c) for c in conns))
    wall, used = time.perf_counter() - t0, cpu() - c0
    out = {"qps": n[0] / wall, "client_cpu_s_per_query": used / max(n[0], 1), **server_per_query(s0, n[0])}
    for c in conns:
        c.close()
    return out


async def fetchall(driver):
    c = await aio_connect(driver)
    cur = await c.cursor()
    await cur.execute("SELECT * FROM sbtest_scan")
    await cur.fetchall()
    t0, c0 = time.perf_counter(), cpu()
    await cur.execute("SELECT * FROM sbtest_scan")
    rows = await cur.fetchall()
    wall, used = time.perf_counter() - t0, cpu() - c0
    assert len(rows) == 100000 and isinstance(rows[0], tuple)
    c.close()
    return {"rows_per_s": len(rows) / wall, "client_cpu_s_per_row": used / len(rows)}


async def sleep30(driver):
    conns = [await aio_connect(driver) for _ in range(30)]

    async def one(c):
        cur = await c.cursor()
        await cur.execute("SELECT SLEEP(0.1)")
        await cur.fetchall()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in conns))
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return {"wall_s": wall}


def sa_url(driver):
    return "mysql+%s://ambisql:%s@localhost/ambisql_test?unix_socket=%s" % (driver, PW, SOCK)


def sbtest_model():
    import sqlalchemy as sa
    from sqlalchemy.orm import declarative_base

    Base = declarative_base()

    class Sbtest(Base):
        __tablename__ = "sbtest1"
        id = sa.Column(sa.Integer, primary_key=True)
        k = sa.Column(sa.Integer)
        c = sa.Column(sa.String(120))
        pad = sa.Column(sa.String(60))

    return Sbtest


async def orm_get_async(driver, seconds=1.0):
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    Sbtest = sbtest_model()
    engine = create_async_engine(sa_url(driver + "_async" if driver == "ambisql" else driver))
    n = 0
    async with AsyncSession(engine) as s:
        for i in range(100):
            await s.get(Sbtest, 1 + i)
        s.expunge_all()
        t0, c0 = time.perf_counter(), cpu()
        end = t0 + seconds
        while time.perf_counter() < end:
            for _ in range(32):
                assert (await s.get(Sbtest, random.randint(1, 10000))) is not None
                s.expunge_all()
            n += 32
        wall, used = time.perf_counter() - t0, cpu() - c0
    await engine.dispose()
    return {"lookups_per_s": n / wall, "client_cpu_s_per_lookup": used / n}


async def core_fetch_async(driver):
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(sa_url(driver + "_async" if driver == "ambisql" else driver))
    t = sa.table("sbtest_scan", sa.column("id"), sa.column("k"), sa.column("c"), sa.column("pad"))
    async with engine.connect() as c:
        (await c.execute(sa.select(t))).all()
        t0, c0 = time.perf_counter(), cpu()
        rows = (await c.execute(sa.select(t))).all()
        wall, used = time.perf_counter() - t0, cpu() - c0
    assert len(rows) == 100000
    await engine.dispose()
    return {"rows_per_s": len(rows) / wall, "client_cpu_s_per_row": used / len(rows)}


def orm_get_sync(driver, seconds=1.0):
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    Sbtest = sbtest_model()
    engine = sa.create_engine(sa_url(driver))
    n = 0
    with Session(engine) as s:
        for i in range(100):
            s.get(Sbtest, 1 + i)
        s.expunge_all()
        t0, c0 = time.perf_counter(), cpu()
        end = t0 + seconds
        while time.perf_counter() < end:
            for _ in range(32):
                assert s.get(Sbtest, random.randint(1, 10000)) is not None
                s.expunge_all()
            n += 32
        wall, used = time.perf_counter() - t0, cpu() - c0
    engine.dispose()
    return {"lookups_per_s": n / wall, "client_cpu_s_per_lookup": used / n}


ORM_INSTR_CHILD = r'''
import os, sys
driver, n = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, os.path.dirname(sys.argv[3]))
import python_async_bench as pab
import sqlalchemy as sa
from sqlalchemy.orm import Session
Sbtest = pab.sbtest_model()
with Session(sa.create_engine(pab.sa_url(driver))) as s:
    for i in range(50):
        s.get(Sbtest, 1 + i)
    s.expunge_all()
    for i in range(n):
        assert s.get(Sbtest, (i * 7919) % 10000 + 1) is not None
        s.expunge_all()
'''


def orm_get_sync_instructions(driver):
    """User-space instructions per ORM lookup (callgrind; deterministic, one round)."""
    import python_bench

    return {"user_instructions_per_lookup": python_bench.per_op_instructions(ORM_INSTR_CHILD, [driver], 1000)}


def on_loop(coro_fn, factory=asyncio.new_event_loop):
    def run(driver):
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(coro_fn(driver))
    return run


WORKLOADS = [
    # name, drivers (the first is the base of the ratios), function
    ("aio_point_select", ["aiomysql", "ambisql", "ambisql-blocking", "raw-socket", "raw-socket-spinning"],
     on_loop(point_select)),
    ("aio_point_select_uvloop", ["aiomysql", "ambisql"], on_loop(point_select, uvloop.new_event_loop)),
    ("aio_c16", ["aiomysql", "ambisql"], on_loop(c16)),
    ("aio_fetchall", ["aiomysql", "ambisql"], on_loop(fetchall)),
    ("aio_sleep30", ["aiomysql", "ambisql"], on_loop(sleep30)),
    ("orm_get_async", ["aiomysql", "ambisql"], on_loop(orm_get_async)),
    ("core_fetch_async", ["aiomysql", "ambisql"], on_loop(core_fetch_async)),
    ("orm_get_sync", ["mysqldb", "pymysql", "ambisql"], orm_get_sync),
]
if shutil.which("valgrind"):
    WORKLOADS.append(("orm_get_sync_instructions", ["mysqldb", "pymysql", "ambisql"], orm_get_sync_instructions))


def main():
    out_json, rounds = None, 3
    args = sys.argv[1:]
    if "--json" in args:
        out_json = args[args.index("--json") + 1]
    if "--rounds" in args:
        rounds = int(args[args.index("--rounds") + 1])
    suffix = args[args.index("--suffix") + 1] if "--suffix" in args else ""  # (rows of another SQLAlchemy)
    workloads = WORKLOADS
    if "--only" in args:
        only = args[args.index("--only") + 1].split(",")
        workloads = [w for w in workloads if w[0] in only]
    rows = []
    for name, drivers, fn in workloads:
        samples = {d: {} for d in drivers}
        for r in range(1 if name.endswith("instructions") else rounds):
            for d in (drivers if r % 2 == 0 else drivers[::-1]):
                for metric, v in fn(d).items():
                    samples[d].setdefault(metric, []).append(v)
        base = {m: statistics.median(v) for m, v in samples[drivers[0]].items()}
        for d in drivers:
            for metric, vs in samples[d].items():
                v = statistics.median(vs)
                rows.append({"workload": name + suffix, "driver": d, "metric": metric, "value": v})
                ratio = v / base[metric] if base.get(metric) else float("nan")
                print("%-24s %-9s %-24s %14.6g  %5.2fx %s" % (name + suffix, d, metric, v, ratio, drivers[0]),
                      flush=True)
    if out_json:
        json.dump(rows, open(out_json, "w"), indent=1)


if __name__ == "__main__":
    main()
