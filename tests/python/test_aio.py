"""ambisql.aio on the default asyncio loop and on uvloop: the API, concurrency on one loop,
cancellation (task.cancel, asyncio.timeout, wait_for) killing the command on the server,
two tasks on one connection, and the run_sync / await_ bridge."""
import asyncio
import gc
import sys
import time
import uuid

import pytest
import uvloop

import ambisql
import ambisql.aio as aio
from conftest import ended, running, server_kwargs, socket_kwargs

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request):
    """Runs a coroutine to its end on a fresh loop of the parametrized kind."""
    factory = LOOPS[request.param]

    def runner(coro):
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(coro)

    return runner


def aio_kwargs(**over):
    kw = socket_kwargs()
    kw["db"] = kw.pop("database")
    kw.update(over)
    return kw


def test_connect_execute_fetch_and_context_managers(run):
    async def main():
        async with await aio.connect(**aio_kwargs()) as conn:
            assert conn.character_set_name() == "utf8mb4"
            async with conn.cursor() as cur:
                assert await cur.execute("SELECT %s, %s, NULL", (1, "zwei")) == 1
                assert cur.description[0][0] == "1"
                assert await cur.fetchone() == (1, "zwei", None)
                assert await cur.fetchone() is None
                await cur.execute("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
                assert await cur.fetchmany(2) == ((1,), (2,),)
                assert await cur.fetchall() == ((3,),)
                await cur.execute("SELECT 1 UNION ALL SELECT 2")
                assert [r async for r in cur] == [(1,), (2,)]
            cur = await conn.cursor(aio.DictCursor)
            await cur.execute("SELECT 7 AS a, 'x' AS b")
            assert await cur.fetchall() == [{"a": 7, "b": "x"}]
            cur = conn.cursor(prepared=True)
            await cur.execute("SELECT ? + 1".replace("?", "%s"), (41,))
            assert await cur.fetchone() == (42,)
            assert conn.get_autocommit() is False
            await conn.autocommit(True)
            assert conn.get_autocommit() is True
            assert await conn.ping() is True
        assert conn.closed

    run(main())


def test_defer_connect_is_refused_where_connect_is_awaited():
    # (It was accepted: a connection that was never connected, with no connect() to call.)
    with pytest.raises(TypeError, match="defer_connect"):
        asyncio.run(aio.connect(defer_connect=True, **aio_kwargs()))


def test_transactions_commit_and_rollback(run, table):
    async def main():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        await cur.execute("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(10))" % table)
        await conn.begin()
        assert await cur.executemany("INSERT INTO " + table + " VALUES (%s, %s)", [(1, "a"), (2, "b")]) == 2
        await conn.rollback()
        await cur.execute("SELECT COUNT(*) FROM " + table)
        assert await cur.fetchone() == (0,)
        await cur.execute("INSERT INTO " + table + " VALUES (%s, %s)", (3, "c"))
        assert cur.lastrowid == 0 and cur.rowcount == 1
        await conn.commit()
        with pytest.raises(ambisql.IntegrityError) as e:
            await cur.execute("INSERT INTO " + table + " VALUES (%s, %s)", (3, "c"))
        assert e.value.args[0] == 1062
        await conn.close()

    run(main())
    check = ambisql.connect(**server_kwargs())
    c = check.cursor()
    c.execute("SELECT id FROM " + table)
    assert c.fetchall() == ((3,),)
    check.close()


def test_streaming_cursor_reads_in_batches_and_close_drains(run):
    async def main():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor(aio.SSCursor)
        await cur.execute("SELECT seq FROM seq_1_to_50000")
        n = 0
        total = 0
        async for (v,) in cur:
            n += 1
            total += v
        assert (n, total) == (50000, 50000 * 50001 // 2)
        await cur.execute("SELECT seq FROM seq_1_to_50000")
        assert await cur.fetchone() == (1,)
        assert len(await cur.fetchmany(10)) == 10
        await cur.close()  # reads and drops the rest
        c2 = conn.cursor()
        await c2.execute("SELECT 5")
        assert await c2.fetchone() == (5,)
        cur = conn.cursor(aio.SSDictCursor)
        await cur.execute("SELECT seq AS s FROM seq_1_to_3")
        assert await cur.fetchall() == [{"s": 1}, {"s": 2}, {"s": 3}]
        conn.close()

    run(main())


def test_two_hundred_sleeps_on_one_loop_run_concurrently(run):
    # 200 x SLEEP(0.5) serialized would take 100 s.
    async def one():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        await cur.execute("SELECT SLEEP(0.5)")
        assert await cur.fetchone() == (0,)
        conn.close()

    async def main():
        t = time.monotonic()
        await asyncio.gather(*(one() for _ in range(200)))
        return time.monotonic() - t

    assert run(main()) < 5.0


def _marker():
    return "aio_" + uuid.uuid4().hex[:10]


@pytest.mark.parametrize("how", ["cancel", "timeout", "wait_for"])
def test_a_cancelled_task_gets_its_query_killed_and_the_connection_stays_usable(run, how):
    m = _marker()

    async def main():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        sql = "SELECT SLEEP(10) AS " + m
        t = time.monotonic()
        if how == "cancel":
            task = asyncio.ensure_future(cur.execute(sql))
            await asyncio.sleep(0.3)
            assert running(m) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        elif how == "timeout":
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await cur.execute(sql)
        else:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(cur.execute(sql), 0.3)
        assert time.monotonic() - t < 3.0
        assert ended(m)
        await cur.execute("SELECT 11")  # in step: the next answer is its own
        assert await cur.fetchall() == ((11,),)
        conn.close()

    run(main())


def test_two_tasks_on_one_connection_get_a_clear_error(run):
    async def main():
        conn = await aio.connect(**aio_kwargs())
        first = asyncio.ensure_future(conn.cursor().execute("SELECT SLEEP(0.3), 1"))
        await asyncio.sleep(0.05)
        with pytest.raises(ambisql.ProgrammingError) as e:
            await conn.cursor().execute("SELECT 2")
        assert e.value.args[0] == 2014
        assert await first == 1  # the first is untouched
        cur = conn.cursor()
        await cur.execute("SELECT 3")
        assert await cur.fetchone() == (3,)
        conn.close()

    run(main())


def test_run_sync_runs_blocking_style_code_concurrently_on_the_loop(run):
    # Plain DB-API code, no async in it: 50 x SLEEP(0.4) would take 20 s serialized.
    def repository_call(i):
        conn = ambisql.connect(**socket_kwargs())
        cur = conn.cursor()
        cur.execute("SELECT SLEEP(0.4), %s", (i,))
        row = cur.fetchone()
        conn.close()
        return row[1]

    async def main():
        t = time.monotonic()
        got = await asyncio.gather(*(aio.run_sync(repository_call, i) for i in range(50)))
        return got, time.monotonic() - t

    got, took = run(main())
    assert got == list(range(50))
    assert took < 3.0


def test_await_inside_run_sync_and_outside(run):
    async def later(v):
        await asyncio.sleep(0.01)
        return v * 2

    def sync_code():
        return aio.await_(later(21))

    assert run(aio.run_sync(sync_code)) == 42
    with pytest.raises(ambisql.InterfaceError):
        aio.await_(later(1))

    def raising():
        raise KeyError("k")

    with pytest.raises(KeyError):
        run(aio.run_sync(raising))


def test_cancelling_run_sync_kills_the_query_inside(run):
    m = _marker()
    conn = ambisql.connect(**socket_kwargs())

    def slow():
        cur = conn.cursor()
        cur.execute("SELECT SLEEP(10) AS " + m)

    async def main():
        task = asyncio.ensure_future(aio.run_sync(slow))
        await asyncio.sleep(0.3)
        assert running(m) == 1
        t = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t < 3.0

    run(main())
    assert ended(m)
    cur = conn.cursor()
    cur.execute("SELECT 12")
    assert cur.fetchall() == ((12,),)
    conn.close()


def test_an_unclosed_connection_outlives_its_loop_quietly(run):
    unraisable = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(u)
    try:
        async def main():
            conn = await aio.connect(**aio_kwargs())
            cur = conn.cursor()
            await cur.execute("SELECT 1")
            return conn

        conn = run(main())  # its loop is closed now
        del conn
        gc.collect()
    finally:
        sys.unraisablehook = old
    assert unraisable == []


def test_a_connection_killed_between_queries_fails_cleanly_and_its_socket_number_serves_the_next(run):
    # Between queries the connection's socket stays registered with the loop; the server
    # closing it must neither spin the loop nor leave a stale registration that a new
    # socket under the same number would inherit (it would then never be woken: a hang).
    async def main():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        await cur.execute("SELECT CONNECTION_ID()")
        (cid,), = await cur.fetchall()
        admin = ambisql.connect(**server_kwargs(autocommit=True))
        admin.cursor().execute("KILL CONNECTION %s" % cid)
        admin.close()
        t = time.process_time()
        await asyncio.sleep(0.3)  # the closed socket turns readable with nobody waiting
        assert time.process_time() - t < 0.2  # no busy loop meanwhile
        with pytest.raises(ambisql.OperationalError):
            await asyncio.wait_for(cur.execute("SELECT 1"), 5)
        conn.close()
        for _ in range(3):  # new connections, the first most likely under the same number
            other = await asyncio.wait_for(aio.connect(**aio_kwargs()), 5)
            ocur = other.cursor()
            for i in range(3):
                await asyncio.wait_for(ocur.execute("SELECT %s", (i,)), 5)
                assert await ocur.fetchall() == ((i,),)
            other.close()

    run(main())


def test_closing_through_the_sync_connection_or_reconnecting_leaves_no_stale_wait(run):
    async def main():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        await cur.execute("SELECT 1")
        conn.sync_connection.close()  # by synchronous code, not through aio
        other = await asyncio.wait_for(aio.connect(**aio_kwargs()), 5)
        ocur = other.cursor()
        await asyncio.wait_for(ocur.execute("SELECT 2"), 5)
        assert await ocur.fetchall() == ((2,),)
        # ping(reconnect=True) after the server dropped the session: a new socket
        await ocur.execute("SELECT CONNECTION_ID()")
        (cid,), = await ocur.fetchall()
        admin = ambisql.connect(**server_kwargs(autocommit=True))
        admin.cursor().execute("KILL CONNECTION %s" % cid)
        admin.close()
        assert await other.ping(reconnect=True)
        await asyncio.wait_for(ocur.execute("SELECT 3"), 5)
        assert await ocur.fetchall() == ((3,),)
        other.close()

    run(main())


def test_errors_keep_their_classes(run):
    async def main():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        with pytest.raises(ambisql.ProgrammingError) as e:
            await cur.execute("SELECT * FROM no_such_table_here")
        assert e.value.args[0] == 1146
        with pytest.raises(TypeError):  # as PyMySQL: too few parameters
            await cur.execute("SELECT %s, %s", (1,))
        await cur.execute("SELECT 1")
        assert await cur.fetchone() == (1,)
        conn.close()
        with pytest.raises(ambisql.InterfaceError):
            await cur.execute("SELECT 1")

    run(main())
    with pytest.raises(ambisql.OperationalError) as e:
        run(aio.connect(**aio_kwargs(password="wrong")))
    assert e.value.args[0] == 1045


def test_a_query_wakes_its_task_in_the_loop_pass_its_answer_arrives_in():
    # The default loop, whose passes are Python: the readiness callback resumes the task
    # itself, where a future would have it wait for the next pass (a second select per
    # query). Counted by the loop's selector: one select per query, the one that waits.
    async def main():
        sel = asyncio.get_running_loop()._selector
        select, calls = sel.select, [0]

        def counting(timeout=None):
            calls[0] += 1
            return select(timeout)

        sel.select = counting
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        await cur.execute("SELECT 0")
        calls[0] = 0
        for i in range(200):
            assert await cur.execute("SELECT %s", (i,)) == 1
            assert await cur.fetchall() == ((i,),)
        conn.close()
        return calls[0]

    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as r:
        assert r.run(main()) <= 210


def test_context_variables_set_by_a_task_between_queries_stay_its_own(run):
    # The task resumes from the loop's readiness callback: in the task's own context, so
    # what it sets after one query is what it reads after the next, and no other task
    # sees it.
    import contextvars

    var = contextvars.ContextVar("var", default=None)

    async def one(conn, tag):
        cur = conn.cursor()
        seen = []
        for i in range(5):
            var.set((tag, i))
            await cur.execute("SELECT %s", (i,))
            seen.append(var.get())
        return seen

    async def main():
        conns = [await aio.connect(**aio_kwargs()) for _ in range(3)]
        got = await asyncio.gather(*(one(c, k) for k, c in enumerate(conns)))
        for c in conns:
            c.close()
        return got

    assert run(main()) == [[(k, i) for i in range(5)] for k in range(3)]


def test_closing_a_connection_wakes_the_task_waiting_on_it_with_an_error(run):
    # Closed from another task mid-query: the waiting task fails with 2013 at once (it
    # used to wait until cancelled), and the loop has nothing left registered for it.
    async def main():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        task = asyncio.ensure_future(cur.execute("SELECT SLEEP(2)"))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        await conn.close()
        with pytest.raises(ambisql.OperationalError) as e:
            await asyncio.wait_for(task, 1.5)
        assert e.value.args[0] == 2013
        assert time.monotonic() - t0 < 0.5
        other = await aio.connect(**aio_kwargs())  # (may take the closed socket's number)
        c2 = other.cursor()
        await c2.execute("SELECT 5")
        assert await c2.fetchall() == ((5,),)
        await other.close()

    run(main())


def _proxy(name):
    # green_worker.py's proxies: DEAF_PROXY stops reading from the client at its first
    # large chunk; STALLING_PROXY never answers a connection after the first.
    import os
    import subprocess

    src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "green_worker.py")).read()
    head = src.split('_PROXY_HEAD = r"""')[1].split('"""')[0]
    code = head + src.split(name + ' = _PROXY_HEAD + r"""')[1].split('"""')[0]
    kw = server_kwargs()
    p = subprocess.Popen([sys.executable, "-c", code, kw["host"], str(kw["port"])], stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


@pytest.mark.parametrize("waiting", ["to_send", "on_its_kill", "reconnecting"])
def test_closing_a_connection_wakes_a_task_waiting_to_send_or_on_its_querys_kill(run, waiting):
    # A 32 MB query waiting to be written (the peer stopped reading), a cancelled query's
    # KILL waiting on a server that does not answer, or ping(reconnect=True) connecting
    # anew to that server, when another task closes the connection: the task's error
    # surfaces at once. It used to wait out the write timeout, the KILL's or the
    # reconnect's connect timeout (6 s here; without a write timeout, for ever).
    proxy, port = _proxy("DEAF_PROXY" if waiting == "to_send" else "STALLING_PROXY")

    async def main():
        kw = server_kwargs(port=port, ssl_mode="disabled", write_timeout=6, connect_timeout=6)
        kw["db"] = kw.pop("database")
        conn = await aio.connect(**kw)
        cur = conn.cursor()
        if waiting == "to_send":
            task = asyncio.ensure_future(cur.execute("SELECT LENGTH(%s)", ("x" * 32_000_000,)))
            await asyncio.sleep(0.5)
        elif waiting == "on_its_kill":
            task = asyncio.ensure_future(cur.execute("SELECT SLEEP(5)"))
            await asyncio.sleep(0.2)
            task.cancel()  # its KILL's side connection now waits on the stalling proxy
            await asyncio.sleep(0.5)
        else:
            conn._sync._c.close()  # (its session gone under it: the ping reconnects, and that stalls)
            task = asyncio.ensure_future(conn.ping(reconnect=True))
            await asyncio.sleep(0.5)
        assert not task.done()
        t0 = time.monotonic()
        await conn.close()
        with pytest.raises(asyncio.CancelledError if waiting == "on_its_kill" else ambisql.OperationalError) as e:
            await asyncio.wait_for(task, 8)
        if waiting != "on_its_kill":
            assert e.value.args[0] == (2013 if waiting == "to_send" else 2003)
        assert time.monotonic() - t0 < 1.0
        assert not conn._sync.open

    try:
        run(main())
    finally:
        proxy.kill()


def test_a_query_whose_coroutine_is_closed_mid_wait_leaves_no_wake_up_behind(run):
    # The coroutine awaiting the read goes away (closed, as a collected one is): the read
    # wait forgets its waiter, so the detach on the way out wakes nobody (it used to call
    # the registered wake-up of a waiter that no longer existed).
    async def main():
        conn = await aio.connect(**aio_kwargs())
        cur = conn.cursor()
        woken = []
        coro = cur.execute("SELECT SLEEP(0.2)")
        wait = coro.send(None)  # runs to the read wait
        wait.add_done_callback(woken.append, context=None)
        coro.close()
        await asyncio.sleep(0.4)
        assert woken == []
        conn.close()

    run(main())
