"""ambisql.twisted: Deferred connections and adbapi's ConnectionPool on fibers, driven by the
reactor (pytest-twisted runs it), with no threads."""
import threading
import time
import uuid

import pytest
import pytest_twisted
from twisted.enterprise import adbapi
from twisted.internet import defer, reactor, task

import ambisql
import ambisql.twisted
from conftest import authors_and_books, exhausted_pool, ended, server_kwargs, socket_kwargs

SOCK = socket_kwargs()


def pools(**cp):
    """adbapi's pool over PyMySQL (threads) and ambisql's, made alike: what the drop-in
    tests run against both."""
    return {"adbapi": lambda: adbapi.ConnectionPool("pymysql", **SOCK, **cp),
            "ambisql": lambda: ambisql.twisted.ConnectionPool("pymysql", **SOCK, **cp)}


@pytest.fixture
def table():
    name = "tw_" + uuid.uuid4().hex[:12]
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    admin.cursor().execute("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB" % name)
    yield name
    admin.cursor().execute("SET SESSION lock_wait_timeout = 10")
    admin.cursor().execute("DROP TABLE IF EXISTS " + name)
    admin.close()


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_connection_s_operations_return_deferreds_and_run_in_order():
    conn = await ambisql.twisted.connect(**SOCK)
    assert isinstance(conn, ambisql.twisted.Connection)
    # asked for at once: they run one after another, in order
    ds = [conn.runQuery("SELECT %s, SLEEP(0.05)", (i,)) for i in range(3)]
    assert [rows[0][0] for rows in await defer.gatherResults(ds)] == [0, 1, 2]
    cur = conn.cursor()
    assert await cur.execute("SELECT 1 UNION SELECT 2") == 2
    assert await cur.fetchone() == (1,)
    assert await cur.fetchall() == ((2,),)
    assert cur.description[0][0] == "1"
    assert await conn.runOperation("DO 1") == 0
    assert await conn.ping()
    conn.close()
    assert not conn.open


@pytest_twisted.ensureDeferred
async def test_thirty_sleeps_at_once_on_one_reactor_start_no_thread():
    threads = threading.active_count()
    pool = ambisql.twisted.ConnectionPool("ambisql", cp_max=30, **SOCK)
    ticks = []
    loop = task.LoopingCall(lambda: ticks.append(time.monotonic()))
    loop.start(0.01)
    t = time.monotonic()
    rows = await defer.gatherResults([pool.runQuery("SELECT SLEEP(0.5), %s", (i,)) for i in range(30)])
    took = time.monotonic() - t
    loop.stop()
    assert sorted(r[0][1] for r in rows) == list(range(30))
    # serialized: 15 s; at once, 0.5 s and the connects
    assert took < 3.0, took
    assert threading.active_count() == threads  # no thread started, by the pool or the reactor
    # the reactor kept running meanwhile (the timer ticked through the queries)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 20 and max(gaps) < 0.5, (len(ticks), max(gaps))
    pool.close()


@pytest_twisted.ensureDeferred
async def test_cancelling_a_query_s_deferred_kills_it_and_the_connection_stays_usable():
    conn = await ambisql.twisted.connect(**SOCK)
    marker = "tw_cancel_" + uuid.uuid4().hex[:8]
    d = conn.runQuery("SELECT SLEEP(30) AS " + marker)
    queued = conn.runQuery("SELECT 7")  # waits for the cancelled one's end
    await sleep(0.3)
    t = time.monotonic()
    d.cancel()
    with pytest.raises(defer.CancelledError):
        await d
    assert await queued == ((7,),)
    assert time.monotonic() - t < 5
    assert ended(marker)  # killed on the server, not left to run 30 s
    assert await conn.runQuery("SELECT 8") == ((8,),)
    conn.close()


@pytest_twisted.ensureDeferred
async def test_cancelling_an_interaction_kills_its_query_rolls_back_and_returns_the_connection(table):
    pool = ambisql.twisted.ConnectionPool("ambisql", cp_max=1, **SOCK)
    marker = "tw_icancel_" + uuid.uuid4().hex[:8]

    def interaction(txn):
        txn.execute("INSERT INTO %s VALUES (1, 'a')" % table)
        txn.execute("SELECT SLEEP(30) AS " + marker)

    d = pool.runInteraction(interaction)
    await sleep(0.3)
    d.cancel()
    with pytest.raises(defer.CancelledError):
        await d
    # the one connection serves the next interaction: rolled back, in step
    assert await pool.runQuery("SELECT COUNT(*) FROM " + table) == ((0,),)
    assert ended(marker)
    pool.close()


@pytest_twisted.ensureDeferred
async def test_a_connection_killed_by_the_server_fails_cleanly_and_the_pool_replaces_it():
    conn = await ambisql.twisted.connect(**SOCK)
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    admin.cursor().execute("KILL %d" % conn.thread_id())
    with pytest.raises(ambisql.OperationalError) as e:
        await conn.runQuery("SELECT 1")
    assert e.value.args[0] in (2006, 2013), e.value
    conn.close()

    pool = ambisql.twisted.ConnectionPool("ambisql", cp_max=1, **SOCK)
    (first,), = await pool.runQuery("SELECT CONNECTION_ID()")
    admin.cursor().execute("KILL %d" % first)
    with pytest.raises(ambisql.OperationalError):
        await pool.runQuery("SELECT 1")
    (second,), = await pool.runQuery("SELECT CONNECTION_ID()")  # a new connection
    assert second != first
    pool.close()
    admin.close()


@pytest_twisted.ensureDeferred
async def test_closing_a_connection_ends_the_query_waiting_on_it():
    conn = await ambisql.twisted.connect(**SOCK)
    d = conn.runQuery("SELECT SLEEP(30)")
    queued = conn.runQuery("SELECT 1")
    await sleep(0.2)
    conn.close()
    with pytest.raises(ambisql.OperationalError):
        await d
    with pytest.raises(ambisql.InterfaceError):
        await queued


@pytest.mark.parametrize("kind", ["adbapi", "ambisql"])
@pytest_twisted.ensureDeferred
async def test_the_drop_in_commits_on_return_rolls_back_on_exception_as_adbapi(kind, table):
    opened = []
    pool = pools(cp_min=1, cp_max=2, cp_openfun=opened.append)[kind]()

    def insert(txn, i, fail):
        txn.execute("INSERT INTO " + table + " VALUES (%s, %s)", (i, "v%d" % i))
        assert txn.rowcount == 1
        if fail:
            raise ValueError("no")
        return i

    assert await pool.runInteraction(insert, 1, False) == 1
    with pytest.raises(ValueError):
        await pool.runInteraction(insert, 2, True)
    assert await pool.runOperation("INSERT INTO " + table + " VALUES (%s, %s)", (3, "c")) is None
    rows = await pool.runQuery("SELECT id, v FROM " + table + " ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, "v1"), (3, "c")]

    def with_connection(conn, n):
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM " + table)
        return cur.fetchone()[0] + n

    assert await pool.runWithConnection(with_connection, 10) == 12
    assert 1 <= len(opened) <= 2 and all(hasattr(c, "cursor") for c in opened)
    assert pool.min == 1 and pool.max == 2
    pool.close()


@pytest.mark.parametrize("kind", ["adbapi", "ambisql"])
@pytest_twisted.ensureDeferred
async def test_with_cp_reconnect_a_lost_connection_fails_its_interaction_then_reconnects(kind):
    pool = pools(cp_min=1, cp_max=1, cp_reconnect=True)[kind]()
    (first,), = await pool.runQuery("SELECT CONNECTION_ID()")
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    admin.cursor().execute("KILL %d" % first)
    admin.close()
    # the driver's error (its rollback fails too: adbapi's Connection disconnects it)
    with pytest.raises(Exception) as e:
        await pool.runQuery("SELECT 1")
    assert type(e.value).__name__ == "OperationalError" and e.value.args[0] in (2006, 2013), e.value
    (second,), = await pool.runQuery("SELECT CONNECTION_ID()")
    assert second != first
    pool.close()


@pytest_twisted.ensureDeferred
async def test_interactions_beyond_cp_max_wait_their_turn_in_order():
    pool = ambisql.twisted.ConnectionPool("ambisql", cp_min=1, cp_max=2, **SOCK)
    order = []

    def interaction(txn, i):
        order.append(i)  # (started)
        txn.execute("SELECT SLEEP(0.1), CONNECTION_ID()")
        return txn.fetchone()[1]

    ids = await defer.gatherResults([pool.runInteraction(interaction, i) for i in range(6)])
    assert len(set(ids)) == 2  # two connections served all six
    # the first two connect at once (either may be first); the rest start in order
    assert sorted(order[:2]) == [0, 1] and order[2:] == [2, 3, 4, 5], order
    # one not started yet is cancelled without running
    blockers = [pool.runQuery("SELECT SLEEP(0.3)") for _ in range(2)]
    d = pool.runInteraction(interaction, 99)
    d.cancel()
    with pytest.raises(defer.CancelledError):
        await d
    await defer.gatherResults(blockers)
    assert 99 not in order
    pool.close()
    with pytest.raises(ambisql.InterfaceError):
        await pool.runQuery("SELECT 1")


@pytest_twisted.ensureDeferred
async def test_synchronous_orm_code_with_lazy_loads_runs_concurrently_in_interactions():
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    Base, Author, engine, setup = authors_and_books("tw", pool_size=20, max_overflow=0)
    pool = ambisql.twisted.ConnectionPool("ambisql", cp_max=20, **SOCK)
    await pool.runInteraction(lambda txn: setup())

    threads = threading.active_count()

    def lookup(txn, i):
        txn.execute("SELECT SLEEP(0.5)")  # the pool's own connection
        with Session(engine) as s:  # and the ORM's, on the same fiber
            s.execute(sa.text("SELECT SLEEP(0.5)"))
            author = s.get(Author, i)
            return len(author.books)  # the lazy load

    t = time.monotonic()
    counts = await defer.gatherResults([pool.runInteraction(lookup, i) for i in range(1, 21)])
    took = time.monotonic() - t
    assert counts == [2] * 20
    assert took < 5.0, took  # serialized: 20 s
    assert threading.active_count() == threads
    await pool.runInteraction(lambda txn: Base.metadata.drop_all(engine))
    await pool.runInteraction(lambda txn: engine.dispose())
    pool.close()


@pytest_twisted.ensureDeferred
async def test_a_fiber_s_wait_for_an_exhausted_pool_ends_at_the_pool_timeout():
    pytest.importorskip("sqlalchemy")
    engine, hold, want = exhausted_pool()
    holder = ambisql.twisted.run_sync(hold)
    await task.deferLater(reactor, 0.1, lambda: None)
    took = await ambisql.twisted.run_sync(want)
    await holder
    engine.dispose()
    assert 0.28 <= took < 0.9, took


@pytest_twisted.ensureDeferred
async def test_run_sync_and_await_bridge_synchronous_code_and_deferreds():
    def work(x):
        conn = ambisql.connect(**SOCK)
        cur = conn.cursor()
        cur.execute("SELECT %s + 1", (x,))
        got = cur.fetchone()[0]
        ambisql.twisted.await_(sleep(0.05))  # a Deferred
        later = ambisql.twisted.await_(defer.ensureDeferred(_plus(got)))  # a coroutine's
        conn.close()
        return later

    assert await ambisql.twisted.run_sync(work, 1) == 12

    def fails():
        ambisql.twisted.await_(defer.fail(KeyError("k")))

    with pytest.raises(KeyError):
        await ambisql.twisted.run_sync(fails)


async def _plus(x):
    await sleep(0.01)
    return x + 10


def test_misuse_gets_clear_errors():
    with pytest.raises(ValueError, match="MySQL/MariaDB only"):
        ambisql.twisted.ConnectionPool("sqlite3")
    pool = ambisql.twisted.ConnectionPool("ambisql", **SOCK)
    with pytest.raises(ambisql.InterfaceError, match="outside a fiber"):
        pool.connect()
    with pytest.raises(ambisql.InterfaceError, match="outside an ambisql.twisted fiber"):
        ambisql.twisted.await_(defer.succeed(1))
    pool.close()
