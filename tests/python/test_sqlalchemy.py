"""The SQLAlchemy 1.4 dialects mysql+ambisql and mysql+ambisql_async against the test
server: found through entry points, MariaDB detection, FOUND_ROWS, isolation levels,
disconnect detection and pre-ping, executemany through the bulk path, exact DECIMAL and
temporal values, errors by code, and the asyncio engine (AsyncSession, run_sync, stream)."""
import asyncio
import time
import datetime
import decimal
import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, declarative_base, relationship

import ambisql
from conftest import exhausted_pool, server_kwargs

SOCK = os.environ["AMBISQL_TEST_SOCKET"]
PW = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")


def url(driver="ambisql"):
    return "mysql+%s://ambisql:%s@localhost/ambisql_test?unix_socket=%s" % (driver, PW, SOCK)


@pytest.fixture
def engine():
    e = sa.create_engine(url())
    yield e
    e.dispose()


@pytest.fixture
def tname():
    name = "sa_" + uuid.uuid4().hex[:10]
    yield name
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    admin.cursor().execute("DROP TABLE IF EXISTS " + name)
    admin.close()


def kill(connection_id):
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    admin.cursor().execute("KILL %d" % connection_id)
    admin.close()


def test_entry_points_find_both_dialects():
    from ambisql.dialect import AmbisqlDialect, AmbisqlDialect_async

    assert sa.engine.make_url(url()).get_dialect() is AmbisqlDialect
    assert sa.engine.make_url(url("ambisql_async")).get_dialect() is AmbisqlDialect_async
    assert sa.engine.make_url(url()).set(drivername="mariadb+ambisql").get_dialect().name == "mariadb"


def test_server_version_mariadb_and_character_set(engine):
    with engine.connect() as c:
        version = c.exec_driver_sql("SELECT VERSION()").scalar()
        assert engine.dialect.is_mariadb == ("MariaDB" in version)
        assert engine.dialect.server_version_info[:2] == tuple(int(x) for x in version.split(".")[:2])
        assert c.connection.dbapi_connection.character_set_name() == "utf8mb4"
        assert c.exec_driver_sql("SELECT @@character_set_client").scalar() == "utf8mb4"


def test_update_rowcount_counts_matched_rows(engine, tname):
    # FOUND_ROWS: the ORM's stale-data check needs rows matched, not rows changed.
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE %s (id INT PRIMARY KEY, v INT)" % tname)
        c.exec_driver_sql("INSERT INTO %s VALUES (1, 5), (2, 5)" % tname)
        r = c.exec_driver_sql("UPDATE %s SET v = 5 WHERE id IN (1, 2)" % tname)
        assert r.rowcount == 2


@pytest.mark.parametrize("level", ["READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE",
                                   "AUTOCOMMIT"])
def test_isolation_levels(engine, level):
    with engine.connect().execution_options(isolation_level=level) as c:
        dbapi = c.connection.dbapi_connection
        if level == "AUTOCOMMIT":
            assert dbapi.get_autocommit() is True
        else:
            assert dbapi.get_autocommit() is False
            got = c.exec_driver_sql("SELECT @@tx_isolation").scalar()
            assert got.replace("-", " ") == level
    assert engine.dialect.get_isolation_level(engine.raw_connection().dbapi_connection) == "REPEATABLE READ"


def test_a_killed_connection_is_a_disconnect_and_pre_ping_replaces_it(engine):
    with engine.connect() as c:
        cid = c.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        kill(cid)
        with pytest.raises(sa.exc.OperationalError) as e:
            c.exec_driver_sql("SELECT 1")
        assert e.value.connection_invalidated
        assert e.value.orig.args[0] in (2006, 2013)
    pinged = sa.create_engine(url(), pool_pre_ping=True, pool_size=1)
    with pinged.connect() as c:
        cid = c.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
    kill(cid)
    with pinged.connect() as c:  # the pool's ping finds it dead and connects anew
        assert c.exec_driver_sql("SELECT CONNECTION_ID()").scalar() != cid
    pinged.dispose()


def test_is_disconnect_on_the_codes_and_a_closed_connection(engine):
    d = engine.dialect
    for code in (2006, 2013, 2014, 2045, 2055, 4031, 1927):
        assert d.is_disconnect(ambisql.OperationalError(code, "x"), None, None)
    assert not d.is_disconnect(ambisql.OperationalError(1213, "Deadlock found"), None, None)
    raw = ambisql.connect(**server_kwargs())
    raw.close()
    with pytest.raises(ambisql.InterfaceError) as e:
        raw.cursor()
    assert d.is_disconnect(e.value, None, None)


def test_executemany_goes_through_the_bulk_path(engine, tname):
    md = sa.MetaData()
    t = sa.Table(tname, md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("price", sa.Numeric(12, 4)), sa.Column("name", sa.String(40)))
    md.create_all(engine)
    rows = [{"id": i, "price": decimal.Decimal("%d.0105" % i), "name": "n%d" % i} for i in range(2000)]
    with engine.begin() as c:
        r = c.execute(t.insert(), rows)
        assert r.rowcount == 2000
    with engine.connect() as c:
        assert c.execute(sa.select(sa.func.count(), sa.func.sum(t.c.price))).one() == (
            2000, sum(r["price"] for r in rows))


def test_decimal_and_temporal_values_are_exact(engine, tname):
    md = sa.MetaData()
    from sqlalchemy.dialects.mysql import DATETIME, TIME

    t = sa.Table(tname, md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("d", sa.Numeric(30, 10)), sa.Column("day", sa.Date),
                 sa.Column("ts", DATETIME(fsp=6)), sa.Column("tm", TIME(fsp=6)), sa.Column("f", sa.Float))
    md.create_all(engine)
    values = dict(id=1, d=decimal.Decimal("12345678901234567890.0123456789"), day=datetime.date(2024, 2, 29),
                  ts=datetime.datetime(2024, 2, 29, 23, 59, 58, 123456), tm=datetime.time(13, 14, 15, 500000),
                  f=1.5)
    with engine.begin() as c:
        c.execute(t.insert(), values)
    with engine.connect() as c:
        row = c.execute(sa.select(t)).one()
    assert row._asdict() == values
    assert isinstance(row.d, decimal.Decimal)


def test_errors_carry_their_codes(engine, tname):
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE %s (id INT PRIMARY KEY)" % tname)
        c.exec_driver_sql("INSERT INTO %s VALUES (1)" % tname)
    with pytest.raises(sa.exc.IntegrityError) as e:
        with engine.begin() as c:
            c.exec_driver_sql("INSERT INTO %s VALUES (1)" % tname)
    assert e.value.orig.args[0] == 1062
    with pytest.raises(sa.exc.ProgrammingError) as e:
        with engine.connect() as c:
            c.exec_driver_sql("SELECT * FROM no_such_table_%s" % tname)
    assert e.value.orig.args[0] == 1146


Base = declarative_base()


class Author(Base):
    __tablename__ = "sa_orm_author"
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(50))
    books = relationship("Book", back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "sa_orm_book"
    id = sa.Column(sa.Integer, primary_key=True)
    author_id = sa.Column(sa.ForeignKey("sa_orm_author.id"))
    title = sa.Column(sa.String(50))
    author = relationship("Author", back_populates="books")


@pytest.fixture
def orm(engine):
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([Author(id=i, name="a%d" % i, books=[Book(title="b%d-%d" % (i, j)) for j in range(3)])
                   for i in range(1, 6)])
        s.commit()
    yield
    Base.metadata.drop_all(engine)


def test_async_engine_session_run_sync_and_stream(orm):
    ae = create_async_engine(url("ambisql_async"), pool_pre_ping=True)

    def lazy_titles(session, author_id):
        # synchronous ORM code: the lazy load of .books is a query of its own
        return [b.title for b in session.get(Author, author_id).books]

    async def main():
        async with AsyncSession(ae) as s:
            assert await s.run_sync(lazy_titles, 2) == ["b2-0", "b2-1", "b2-2"]
            result = await s.stream(sa.select(Book.title).order_by(Book.id))
            titles = [t async for t in result.scalars()]
            assert len(titles) == 15 and titles[0] == "b1-0"
            s.add(Author(id=99, name="new"))
            await s.commit()
        async with ae.connect() as c:
            result = await c.stream(sa.select(Book.id).order_by(Book.id))
            assert isinstance(result._real_result.cursor, ambisql.SSCursor)  # a server-side cursor
            assert [i async for i in result.scalars()] == list(range(1, 16))
        async with ae.connect() as c:
            c2 = await c.execution_options(isolation_level="AUTOCOMMIT")
            assert await c2.scalar(sa.text("SELECT COUNT(*) FROM sa_orm_author")) == 6
            raw = await c.get_raw_connection()
            assert raw.driver_connection.get_autocommit() is True
        async with ae.begin() as c:
            r = await c.execute(sa.update(Author).where(Author.id == 99).values(name="new"))
            assert r.rowcount == 1  # matched, not changed
            await c.execute(sa.delete(Author).where(Author.id == 99))
        await ae.dispose()

    asyncio.run(main())


def test_async_engine_concurrent_requests_share_one_loop(orm):
    ae = create_async_engine(url("ambisql_async"), pool_size=30, max_overflow=0)

    def request(session, author_id):
        session.execute(sa.text("SELECT SLEEP(0.3)"))
        return len(session.get(Author, author_id).books)

    async def one(i):
        async with AsyncSession(ae) as s:
            return await s.run_sync(request, 1 + i % 5)

    async def main():
        loop = asyncio.get_running_loop()
        t = loop.time()
        got = await asyncio.gather(*(one(i) for i in range(30)))
        took = loop.time() - t
        await ae.dispose()
        return got, took

    got, took = asyncio.run(main())
    assert got == [3] * 30
    assert took < 3.0  # serialized: 9 s


def test_a_cancelled_async_request_leaves_the_pool_usable(orm):
    ae = create_async_engine(url("ambisql_async"), pool_size=1, max_overflow=0)

    async def main():
        async def slow():
            async with ae.connect() as c:
                await c.execute(sa.text("SELECT SLEEP(10)"))

        t = asyncio.get_running_loop().time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slow(), 0.3)
        assert asyncio.get_running_loop().time() - t < 3.0
        async with ae.connect() as c:
            assert await c.scalar(sa.text("SELECT 7")) == 7
        await ae.dispose()

    asyncio.run(main())


def test_a_plain_sync_engine_serves_run_sync_code_even_when_its_pool_is_exhausted(orm):
    # 30 requests through 3 pooled connections: the wait for a connection (and the
    # engine's first-connect initialization) must go through the loop, not block it.
    import ambisql.aio

    engine = sa.create_engine(url(), pool_size=3, max_overflow=0, pool_timeout=20)

    def request(i):
        with Session(engine) as s:
            s.execute(sa.text("SELECT SLEEP(0.1)"))
            return len(s.get(Author, 1 + i % 5).books)

    async def main():
        loop = asyncio.get_running_loop()
        t = loop.time()
        got = await asyncio.gather(*(ambisql.aio.run_sync(request, i) for i in range(30)))
        return got, loop.time() - t

    got, took = asyncio.run(main())
    engine.dispose()
    assert got == [3] * 30
    assert took < 5.0  # ten rounds of 0.1 s on three connections


def run_counting_switches(make):
    """asyncio.run() of make()'s awaitable: (its result, how many greenlet switches it took)."""
    import greenlet

    switches = 0

    def trace(event, args):
        nonlocal switches
        switches += event in ("switch", "throw")

    async def main():
        greenlet.settrace(trace)
        try:
            return await make()
        finally:
            greenlet.settrace(None)

    return asyncio.run(main()), switches


def test_greenlets_waiting_for_an_exhausted_pool_are_woken_not_polling(orm):
    # 60 requests on run_sync greenlets through 3 connections: the 57 waiting are woken as
    # connections come back, one each time. They polled every millisecond: 87,248 greenlet
    # switches for this run (0.35 s of CPU), 386 now.
    import ambisql.aio

    engine = sa.create_engine(url(), pool_size=3, max_overflow=0, pool_timeout=20)

    def request(i):
        with engine.connect() as c:
            return c.execute(sa.text("SELECT SLEEP(0.1), %d" % i)).fetchone()[1]

    got, switches = run_counting_switches(lambda: asyncio.gather(*(ambisql.aio.run_sync(request, i) for i in range(60))))
    assert got == list(range(60))
    engine.dispose()
    assert switches < 3000, switches


def test_a_run_sync_wait_for_an_exhausted_pool_ends_at_the_pool_timeout():
    import ambisql.aio

    engine, hold, want = exhausted_pool()

    async def main():
        holder = asyncio.ensure_future(ambisql.aio.run_sync(hold))
        await asyncio.sleep(0.1)
        took = await ambisql.aio.run_sync(want)
        await holder
        return took

    took = asyncio.run(main())
    engine.dispose()
    assert 0.28 <= took < 0.9, took


def test_greenlets_waiting_for_the_engine_s_first_connect_are_woken_not_polling(orm):
    # 100 requests on a fresh engine: one runs the first-connect initialization while the
    # rest wait for its mutex on the loop; the release wakes them one by one (they used to
    # poll every millisecond: thousands of loop passes, most of the demo's wall time).
    import ambisql.aio

    engine = sa.create_engine(url(), pool_size=100, max_overflow=0)

    def request(i):
        with Session(engine) as s:
            return len(s.get(Author, 1 + i % 5).books)

    got, switches = run_counting_switches(lambda: asyncio.gather(*(ambisql.aio.run_sync(request, i) for i in range(100))))
    assert got == [3] * 100
    engine.dispose()
    assert switches < 4000, switches  # 1,608 here: about 16 per request


def test_async_engine_connections_outlive_their_loop_quietly(orm):
    # A checked-out connection never returned, an engine never disposed, the loop gone:
    # collecting them must not raise ("Event loop is closed") nor warn.
    import gc
    import sys
    import warnings

    unraisable = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(u)
    try:
        async def main():
            ae = create_async_engine(url("ambisql_async"))
            c = await ae.connect()
            await c.execute(sa.text("SELECT 1"))
            return ae, c

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ae, c = asyncio.run(main())
            del ae, c
            gc.collect()
    finally:
        sys.unraisablehook = old
    assert unraisable == []
    assert [str(w.message) for w in caught] == []  # SQLAlchemy's "garbage collector" warning too
