"""Twisted and trio benchmarks: ambisql.twisted against twisted.enterprise.adbapi over
MySQLdb's and PyMySQL's thread pools, and ambisql under trio against ambisql.aio on asyncio;
same server, same run; drivers alternate over rounds, each sample in a process of its own
(a reactor runs once per process), and the median is reported. Run by scripts/bench
(workload `python`), or:
    /usr/bin/python3 bench/python_twisted_bench.py [--json out.json] [--rounds N] [--only a,b]
Workloads (the sbtest tables scripts/bench creates):
  twisted_point_select  SELECT c FROM sbtest1 WHERE id = %s, one after another through
                        ConnectionPool.runQuery: qps (ambisql.twisted-conn: a
                        Connection's runQuery, no pool)
  twisted_c16           16 such loops at once on one reactor (cp_max 16): qps
  twisted_sleep30       30 concurrent SELECT SLEEP(0.1) through runQuery (cp_max 30, the
                        connections open before): wall seconds, and threads started
  trio_point_select     point selects on one connection, ambisql.aio's API: qps, ambisql
                        under trio beside ambisql.aio on asyncio; trio-raw-wait: no
                        driver logic between the queries but trio's own wait_readable and
                        the core's poll(), the limit trio's scheduler sets"""
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

PW = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
SOCK = os.environ.get("AMBISQL_TEST_SOCKET")
KW = dict(unix_socket=SOCK, user="ambisql", db="ambisql_test")
QUERY = "SELECT c FROM sbtest1 WHERE id = %s"
SECONDS = 1.0


def pool(driver, cp_max):
    # adbapi's own pool over a thread per connection, or ambisql's on fibers; the same
    # arguments either way (MySQLdb's and PyMySQL's connect() take passwd=)
    if driver.startswith("adbapi-"):
        from twisted.enterprise import adbapi

        return adbapi.ConnectionPool({"adbapi-mysqldb": "MySQLdb", "adbapi-pymysql": "pymysql"}[driver],
                                     passwd=PW, cp_min=cp_max, cp_max=cp_max, **KW)
    from ambisql.twisted import ConnectionPool

    return ConnectionPool("MySQLdb", passwd=PW, cp_min=cp_max, cp_max=cp_max, **KW)


async def twisted_point_select(driver):
    import ambisql.twisted

    if driver == "ambisql.twisted-conn":
        conn = await ambisql.twisted.connect(password=PW, autocommit=True, **KW)
        run = conn.runQuery
    else:
        p = pool(driver, 5)
        run = p.runQuery
    ids = [random.randint(1, 10000) for _ in range(4096)]
    for i in range(200):
        await run(QUERY, (ids[i],))
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    end = t0 + SECONDS
    while True:
        for k in range(64):
            rows = await run(QUERY, (ids[(n + k) & 4095],))
        n += 64
        if time.perf_counter() >= end:
            break
    wall, used = time.perf_counter() - t0, time.process_time() - c0
    assert len(rows) == 1
    return {"qps": n / wall, "client_cpu_s_per_query": used / n}


async def twisted_c16(driver):
    from twisted.internet import defer

    p = pool(driver, 16)
    await defer.gatherResults([p.runQuery("SELECT 1") for _ in range(16)])
    n = [0]
    end = time.perf_counter() + SECONDS

    async def worker():
        while time.perf_counter() < end:
            await p.runQuery(QUERY, (random.randint(1, 10000),))
            n[0] += 1

    t0 = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(16)])
    return {"qps": n[0] / (time.perf_counter() - t0)}


async def twisted_sleep30(driver):
    from twisted.internet import defer

    before = threading.active_count()
    p = pool(driver, 30)
    await defer.gatherResults([p.runQuery("SELECT 1") for _ in range(30)])  # connections open
    t0 = time.perf_counter()
    await defer.gatherResults([p.runQuery("SELECT SLEEP(0.1)") for _ in range(30)])
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "threads_started": threading.active_count() - before}


async def point_select_async(driver):
    import ambisql.aio

    c = await ambisql.aio.connect(password=PW, autocommit=True, **KW)
    cur = c.cursor()
    ids = [random.randint(1, 10000) for _ in range(4096)]
    if driver == "trio-raw-wait":
        import trio

        from ambisql._ambisql import POLL_OK

        sync_cur = cur._cur

        async def execute(query, args):  # the least a trio driver can do per query
            q = sync_cur._quick_start(query, args)
            while q.poll() != POLL_OK:
                await trio.lowlevel.wait_readable(q.fileno())
            sync_cur._quick_take(q)
    else:
        execute = cur.execute
    for i in range(200):
        await execute(QUERY, (ids[i],))
        await cur.fetchall()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    end = t0 + SECONDS
    while True:
        for k in range(64):
            await execute(QUERY, (ids[(n + k) & 4095],))
            await cur.fetchall()
        n += 64
        if time.perf_counter() >= end:
            break
    wall, used = time.perf_counter() - t0, time.process_time() - c0
    c.close()
    return {"qps": n / wall, "client_cpu_s_per_query": used / n}


WORKLOADS = [
    # name, drivers (the first is the base of the ratios)
    ("twisted_point_select", ["adbapi-mysqldb", "adbapi-pymysql", "ambisql.twisted", "ambisql.twisted-conn"]),
    ("twisted_c16", ["adbapi-mysqldb", "adbapi-pymysql", "ambisql.twisted"]),
    ("twisted_sleep30", ["adbapi-mysqldb", "adbapi-pymysql", "ambisql.twisted"]),
    ("trio_point_select", ["ambisql.aio-asyncio", "ambisql.aio-trio", "trio-raw-wait"]),
]


def child(name, driver):
    # one sample, in this process
    if name == "trio_point_select":
        if "trio" in driver:
            import trio

            return trio.run(point_select_async, driver)
        import asyncio

        return asyncio.run(point_select_async(driver))
    from twisted.internet import defer, reactor

    out = {}

    def go():
        d = defer.ensureDeferred(globals()[name](driver))
        d.addCallback(out.update)
        d.addErrback(lambda f: out.update(error=f.getTraceback()))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run()
    return out


def main():
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        print(json.dumps(child(args[1], args[2])))
        return
    out_json = args[args.index("--json") + 1] if "--json" in args else None
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 5
    workloads = WORKLOADS
    if "--only" in args:
        only = args[args.index("--only") + 1].split(",")
        workloads = [w for w in workloads if w[0] in only]
    rows = []
    for name, drivers in workloads:
        samples = {d: {} for d in drivers}
        for r in range(rounds):
            for d in (drivers if r % 2 == 0 else drivers[::-1]):
                p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name, d],
                                   capture_output=True, text=True, timeout=120)
                res = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 and p.stdout.strip() else {
                    "error": p.stderr[-2000:]}
                if "error" in res:
                    sys.exit("%s %s failed:\n%s" % (name, d, res["error"]))
                for metric, v in res.items():
                    samples[d].setdefault(metric, []).append(v)
        base = {m: statistics.median(v) for m, v in samples[drivers[0]].items()}
        for d in drivers:
            for metric, vs in samples[d].items():
                v = statistics.median(vs)
                rows.append({"workload": name, "driver": d, "metric": metric, "value": v})
                ratio = v / base[metric] if base.get(metric) else float("nan")
                print("%-22s %-22s %-10s %12.6g  %5.2fx %s" % (name, d, metric, v, ratio, drivers[0]), flush=True)
    if out_json:
        json.dump(rows, open(out_json, "w"), indent=1)


if __name__ == "__main__":
    main()
