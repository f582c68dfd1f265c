"""ambisql under trio: ambisql.aio's API (ambisql.trio, and ambisql.aio.connect() called
under trio), cancel scopes, the bridge; and through anyio on both of its backends."""
import threading
import time
import uuid

import pytest
import trio

import ambisql
import ambisql.aio
import ambisql.trio
from conftest import authors_and_books, exhausted_pool, ended, server_kwargs, socket_kwargs

SOCK = socket_kwargs()


def test_the_aio_api_under_trio_connects_queries_and_streams():
    async def main():
        conn = await ambisql.aio.connect(**SOCK)  # under trio: ambisql.trio's
        assert isinstance(conn, ambisql.trio.Connection)
        async with conn.cursor() as cur:
            assert await cur.execute("SELECT %s, 'x'", (1,)) == 1
            assert await cur.fetchall() == ((1, "x"),)
        async with conn.cursor(ambisql.aio.DictCursor) as cur:
            await cur.execute("SELECT 2 AS two")
            assert await cur.fetchone() == {"two": 2}
        async with conn.cursor(ambisql.aio.SSCursor) as cur:
            await cur.execute("SELECT seq FROM seq_1_to_5000")
            got = [row async for row in cur]
            assert len(got) == 5000 and got[-1] == (5000,)
        await conn.begin()
        await conn.rollback()
        assert await conn.ping()
        conn.close()
        assert conn.closed
        direct = await ambisql.trio.connect(**SOCK)
        cur = direct.cursor()
        await cur.execute("SELECT 3")
        assert await cur.fetchone() == (3,)
        direct.close()

    trio.run(main)


def test_thirty_sleeps_at_once_in_one_thread():
    threads = threading.active_count()

    async def one(results):
        conn = await ambisql.trio.connect(**SOCK)
        cur = conn.cursor()
        await cur.execute("SELECT SLEEP(0.5)")
        results.append(await cur.fetchone())
        conn.close()

    async def main():
        results = []
        t = time.monotonic()
        async with trio.open_nursery() as n:
            for _ in range(30):
                n.start_soon(one, results)
        assert len(results) == 30
        return time.monotonic() - t

    took = trio.run(main)
    assert took < 3.0, took  # serialized: 15 s
    assert threading.active_count() == threads


@pytest.mark.parametrize("how", ["move_on_after", "nursery_cancel"])
def test_a_cancelled_scope_kills_the_query_and_the_connection_stays_usable(how):
    marker = "trio_cancel_" + uuid.uuid4().hex[:8]

    async def main():
        conn = await ambisql.trio.connect(**SOCK)
        cur = conn.cursor()
        t = time.monotonic()
        if how == "move_on_after":
            with trio.move_on_after(0.3) as scope:
                await cur.execute("SELECT SLEEP(30) AS " + marker)
            assert scope.cancelled_caught
        else:
            async with trio.open_nursery() as n:
                async def query():
                    await cur.execute("SELECT SLEEP(30) AS " + marker)

                n.start_soon(query)
                await trio.sleep(0.3)
                n.cancel_scope.cancel()
        assert time.monotonic() - t < 5
        await cur.execute("SELECT 5")  # in step: the killed command's answer was read
        assert await cur.fetchone() == (5,)
        conn.close()

    trio.run(main)
    assert ended(marker)


def test_a_cancelled_scope_reaches_the_database_call_inside_run_sync():
    marker = "trio_rs_" + uuid.uuid4().hex[:8]
    box = {}

    def repository_call():
        conn = box["conn"] = ambisql.connect(**SOCK)
        conn.cursor().execute("SELECT SLEEP(30) AS " + marker)

    async def main():
        with trio.move_on_after(0.3) as scope:
            await ambisql.trio.run_sync(repository_call)
        assert scope.cancelled_caught
        cur = box["conn"].cursor()
        await ambisql.trio.run_sync(cur.execute, "SELECT 6")
        assert cur.fetchone() == (6,)
        box["conn"].close()

    trio.run(main)
    assert ended(marker)


def test_a_connection_killed_by_the_server_fails_cleanly():
    async def main():
        conn = await ambisql.trio.connect(**SOCK)
        admin = ambisql.connect(**server_kwargs(autocommit=True))
        admin.cursor().execute("KILL %d" % conn.thread_id())
        admin.close()
        cur = conn.cursor()
        with pytest.raises(ambisql.OperationalError) as e:
            await cur.execute("SELECT 1")
        assert e.value.args[0] in (2006, 2013)
        assert not conn.open

    trio.run(main)


def test_closing_a_connection_wakes_the_task_waiting_on_it():
    async def main():
        conn = await ambisql.trio.connect(**SOCK)
        cur = conn.cursor()
        failed = []

        async def query():
            try:
                await cur.execute("SELECT SLEEP(30)")
            except ambisql.Error as e:
                failed.append(e)

        t = time.monotonic()
        async with trio.open_nursery() as n:
            n.start_soon(query)
            await trio.sleep(0.3)
            conn.close()
        assert time.monotonic() - t < 5
        assert failed and isinstance(failed[0], ambisql.OperationalError)

    trio.run(main)


def test_synchronous_orm_code_with_lazy_loads_runs_concurrently_through_run_sync():
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    Base, Author, engine, setup = authors_and_books("trio", pool_size=5, max_overflow=0)  # 20 requests share 5

    def lookup(i):
        with Session(engine) as s:
            s.execute(sa.text("SELECT SLEEP(0.5)"))
            ambisql.trio.await_(trio.sleep(0.01))
            return len(s.get(Author, i).books)  # the lazy load

    async def main():
        await ambisql.trio.run_sync(setup)
        counts = []

        async def one(i):
            counts.append(await ambisql.aio.run_sync(lookup, i))  # (ambisql.aio's, under trio)

        t = time.monotonic()
        async with trio.open_nursery() as n:
            for i in range(1, 21):
                n.start_soon(one, i)
        took = time.monotonic() - t
        await ambisql.trio.run_sync(Base.metadata.drop_all, engine)
        await ambisql.trio.run_sync(engine.dispose)
        return counts, took

    counts, took = trio.run(main)
    assert counts == [2] * 20
    assert took < 5.0, took  # serialized: 10 s; five at a time: 2 s


def test_a_fiber_s_wait_for_an_exhausted_pool_ends_at_the_pool_timeout():
    pytest.importorskip("sqlalchemy")
    engine, hold, want = exhausted_pool()

    async def main():
        async with trio.open_nursery() as n:
            n.start_soon(ambisql.trio.run_sync, hold)
            await trio.sleep(0.1)
            return await ambisql.trio.run_sync(want)

    took = trio.run(main)
    engine.dispose()
    assert 0.28 <= took < 0.9, took


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_through_anyio_on_either_backend(backend):
    anyio = pytest.importorskip("anyio")

    async def main():
        conn = await ambisql.aio.connect(**SOCK)
        assert isinstance(conn, ambisql.trio.Connection) == (backend == "trio")
        results = []

        async def one():
            cur = conn.cursor()
            await cur.execute("SELECT SLEEP(0.2), 1")
            results.append(await cur.fetchone())

        await one()
        with anyio.move_on_after(0.2):
            cur = conn.cursor()
            await cur.execute("SELECT SLEEP(30)")
        await one()  # usable after the cancellation
        conn.close()
        return results

    assert anyio.run(main, backend=backend) == [(0, 1), (0, 1)]


def test_await_outside_run_sync_is_a_clear_error():
    with pytest.raises(ambisql.InterfaceError):
        ambisql.trio.await_(trio.sleep(0))
