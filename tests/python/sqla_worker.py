"""Run by test_sqlalchemy_versions.py in a process of its own, with the SQLAlchemy under
test first on sys.path (Debian's 1.4, or a vendored 2.0 / 2.1):
    sqla_worker.py
prints one JSON line with what it saw. Any SQLAlchemy warning (a deprecation included) is
an error here."""
import asyncio
import json
import os
import time
import uuid
import warnings

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, declarative_base, relationship

warnings.filterwarnings("error", category=sa_exc.SAWarning)
warnings.filterwarnings("error", category=sa_exc.SADeprecationWarning)
warnings.filterwarnings("error", category=DeprecationWarning, module="ambisql")

V2 = int(sa.__version__.split(".")[0]) >= 2
pw = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
URL = "mysql+ambisql://ambisql:%s@127.0.0.1:%s/ambisql_test?ssl_mode=disabled" % (pw, os.environ["AMBISQL_TEST_PORT"])
ASYNC_URL = URL.replace("mysql+ambisql:", "mysql+ambisql_async:", 1)
out = {"version": sa.__version__}
suffix = uuid.uuid4().hex[:8]

if V2:
    from sqlalchemy.ext.asyncio import AsyncAttrs
    from sqlalchemy.orm import DeclarativeBase

    class Base(AsyncAttrs, DeclarativeBase):
        pass
else:
    Base = declarative_base()


class Author(Base):
    __tablename__ = "sqla_author_" + suffix
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(50))
    books = relationship("Book", back_populates="author", lazy="select")


class Book(Base):
    __tablename__ = "sqla_book_" + suffix
    id = sa.Column(sa.Integer, primary_key=True)
    title = sa.Column(sa.String(50))
    author_id = sa.Column(sa.ForeignKey(Author.id))
    author = relationship(Author, back_populates="books")


def running(marker):
    import ambisql

    c = ambisql.connect(host="127.0.0.1", port=int(os.environ["AMBISQL_TEST_PORT"]), user="ambisql",
                        password=pw, database="ambisql_test", ssl_mode="disabled")
    cur = c.cursor()
    cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
                ("%" + marker + "%",))
    n = cur.fetchone()[0]
    c.close()
    return n


# ---- sync
engine = sa.create_engine(URL)
Base.metadata.create_all(engine)
try:
    with engine.begin() as conn:
        out["sync_select"] = conn.execute(sa.select(sa.literal(1))).scalar()
    with Session(engine) as s:
        a = Author(name="Ada", books=[Book(title="Notes %d" % i) for i in range(3)])
        s.add(a)
        s.commit()
        aid = a.id
    with Session(engine) as s:
        a = s.get(Author, aid)
        out["sync_lazy"] = sorted(b.title for b in a.books)  # a lazy load
    with engine.connect() as conn:  # server-side cursor
        r = conn.execution_options(stream_results=True).execute(sa.text("SELECT seq FROM seq_1_to_1000"))
        out["sync_stream"] = sum(row[0] for row in r)
    if V2:  # insertmanyvalues with RETURNING, in the order of the parameters (MariaDB 10.5+)
        with engine.begin() as conn:
            rows = conn.execute(sa.insert(Book).returning(Book.id, Book.title, sort_by_parameter_order=True),
                                [{"title": "R%03d" % i, "author_id": aid} for i in range(250)]).all()
            out["sync_returning"] = [t for _, t in rows] == ["R%03d" % i for i in range(250)]
        with Session(engine) as s:  # the ORM's bulk insert uses it too
            books = [Book(title="O%d" % i, author_id=aid) for i in range(20)]
            s.add_all(books)
            s.flush()
            out["orm_bulk_ids"] = all(b.id is not None for b in books) and len({b.id for b in books}) == 20
            s.rollback()
    levels = {}
    for level in ("READ COMMITTED", "SERIALIZABLE", "AUTOCOMMIT"):
        with engine.connect().execution_options(isolation_level=level) as conn:
            levels[level] = [conn.exec_driver_sql("SELECT @@tx_isolation").scalar(),
                             conn.exec_driver_sql("SELECT @@autocommit").scalar()]
    out["isolation"] = levels
    engine.dispose()
    # pool_pre_ping: a pooled connection the server killed is replaced at checkout, unseen
    pinged = sa.create_engine(URL, pool_pre_ping=True, pool_size=1)
    with pinged.connect() as conn:
        cid = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
    with sa.create_engine(URL).connect() as other:
        other.exec_driver_sql("KILL %d" % cid)
    with pinged.connect() as conn:
        out["pre_ping"] = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar() != cid
    pinged.dispose()

    # ---- asyncio
    async def main():
        ae = create_async_engine(ASYNC_URL, pool_size=5, max_overflow=0)
        async with ae.connect() as conn:
            out["async_execute"] = (await conn.execute(sa.select(sa.literal(2)))).scalar()
            out["async_scalar"] = await conn.scalar(sa.select(sa.literal(3)))
            stream = await conn.stream(sa.text("SELECT seq FROM seq_1_to_1000"))
            out["async_stream"] = sum([row[0] async for row in stream])
            out["async_run_sync"] = await conn.run_sync(lambda sync: sync.execute(sa.select(sa.literal(4))).scalar())
        async with AsyncSession(ae) as s:
            a = await s.get(Author, aid)
            out["async_get"] = a.name
            out["async_scalars"] = sorted((await s.scalars(sa.select(Book.title).where(Book.author_id == aid, Book.title.like("Notes%")))).all())
            result = await s.stream(sa.select(Book.title).where(Book.author_id == aid, Book.title.like("Notes%")))
            out["async_session_stream"] = sorted([row[0] async for row in result])
            if V2:
                out["async_awaitable_attrs"] = sorted(b.title for b in await a.awaitable_attrs.books
                                                      if b.title.startswith("Notes"))
        async with AsyncSession(ae) as s:
            def lazy(sync_session):
                return sorted(b.title for b in sync_session.get(Author, aid).books if b.title.startswith("Notes"))

            out["async_run_sync_lazy"] = await s.run_sync(lazy)

        # 50 concurrent tasks on one engine (5 connections)
        async def one(i):
            async with ae.connect() as conn:
                return (await conn.execute(sa.text("SELECT :i, SLEEP(0.05)"), {"i": i})).scalar()

        t0 = time.monotonic()
        got = await asyncio.gather(*[one(i) for i in range(50)])
        out["async_50"] = [sorted(got) == list(range(50)), time.monotonic() - t0]

        # a task cancelled while it awaits a query: killed on the server, the connection usable
        marker = "sqla_cancel_" + suffix
        async def sleeper():
            async with ae.connect() as conn:
                await conn.execute(sa.text("SELECT SLEEP(10) /* %s */" % marker))

        task = asyncio.ensure_future(sleeper())
        await asyncio.sleep(0.3)
        task.cancel()
        t0 = time.monotonic()
        try:
            await task
            out["async_cancel"] = "not cancelled"
        except asyncio.CancelledError:
            out["async_cancel"] = "cancelled"
        out["async_cancel_took"] = time.monotonic() - t0
        out["async_cancel_running"] = running(marker)
        async with ae.connect() as conn:
            out["async_after_cancel"] = (await conn.execute(sa.select(sa.literal(5)))).scalar()

        # a connection the server kills: invalidated, and the next request works
        async with ae.connect() as conn:
            cid = (await conn.execute(sa.text("SELECT CONNECTION_ID()"))).scalar()
        import ambisql

        k = ambisql.connect(host="127.0.0.1", port=int(os.environ["AMBISQL_TEST_PORT"]), user="ambisql",
                            password=pw, database="ambisql_test", ssl_mode="disabled")
        k.cursor().execute("KILL %d" % cid)
        k.close()
        killed = []
        for _ in range(6):  # the pool's connections, one of them dead
            try:
                async with ae.connect() as conn:
                    await conn.execute(sa.select(sa.literal(6)))
            except sa_exc.DBAPIError as e:
                killed.append(bool(e.connection_invalidated))
        out["async_killed_invalidated"] = killed
        async with ae.connect() as conn:
            out["async_after_kill"] = (await conn.execute(sa.select(sa.literal(7)))).scalar()
        async with ae.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            out["async_autocommit"] = (await auto.exec_driver_sql("SELECT @@autocommit")).scalar()
        await ae.dispose()
        # a checked-out connection abandoned without a loop to reset it on: terminated
        ae2 = create_async_engine(ASYNC_URL)
        conn = await ae2.connect()
        await conn.execute(sa.select(sa.literal(8)))
        dbapi = (await conn.get_raw_connection()).dbapi_connection
        ae2.sync_engine.dialect.do_terminate(dbapi)
        out["terminated"] = not dbapi._connection.open
        await conn.invalidate()
        await ae2.dispose()

    asyncio.run(main())
finally:
    engine = sa.create_engine(URL)
    Base.metadata.drop_all(engine)
    engine.dispose()
print(json.dumps(out))
