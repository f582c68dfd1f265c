"""One synchronous SQLAlchemy ORM data-access layer (authors and books, lazy loading, no
async in it) serving concurrent requests, each a lookup with SLEEP(0.05) then a lazy load,
under every concurrency model a Python service uses:

  a   asyncio handlers -> AsyncSession.run_sync on mysql+ambisql_async
  a2  asyncio handlers -> ambisql.aio.run_sync with the plain sync mysql+ambisql engine
  b   eventlet, mysql+ambisql after ambisql.green.patch_eventlet()
  c   gevent, mysql+ambisql after ambisql.green.patch_gevent()
  d   a thread pool, mysql+ambisql
  e   MySQLdb under eventlet (it blocks inside C: one request after another)
  f   PyMySQL under eventlet
  g   aiomysql: AsyncSession.run_sync on mysql+aiomysql
  h   Twisted, adbapi.ConnectionPool over MySQLdb: an interaction per request, a thread each
  i   Twisted, adbapi.ConnectionPool over PyMySQL
  j   Twisted, ambisql.twisted.ConnectionPool (the same code, one import changed): fibers,
      every wait the reactor's, no threads
  k   trio, ambisql.trio.run_sync with the plain sync mysql+ambisql engine

  /usr/bin/python3 orm_scenario.py --socket /path/mysqld.sock [--requests 200] [--modes a,a2,b]
  /usr/bin/python3 orm_scenario.py --socket ... --mode b     (one mode, in this process)

Each mode runs in a process of its own (gevent and eventlet patch the process)."""
import argparse
import os
import subprocess
import sys
import time

SLEEP = 0.05
MODES = {
    "a": "asyncio, AsyncSession.run_sync, mysql+ambisql_async",
    "a2": "asyncio, ambisql.aio.run_sync, mysql+ambisql",
    "b": "eventlet, mysql+ambisql",
    "c": "gevent, mysql+ambisql",
    "d": "thread pool, mysql+ambisql",
    "e": "eventlet, mysql+mysqldb",
    "f": "eventlet, mysql+pymysql",
    "g": "asyncio, AsyncSession.run_sync, mysql+aiomysql",
    "h": "Twisted, adbapi over MySQLdb (threads)",
    "i": "Twisted, adbapi over PyMySQL (threads)",
    "j": "Twisted, ambisql.twisted.ConnectionPool",
    "k": "trio, ambisql.trio.run_sync, mysql+ambisql",
}


# ---- the data-access layer: plain synchronous SQLAlchemy ORM code
def model():
    import sqlalchemy as sa
    from sqlalchemy.orm import declarative_base, relationship

    Base = declarative_base()

    class Author(Base):
        __tablename__ = "demo_author"
        id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(50))
        books = relationship("Book", back_populates="author", order_by="Book.id")  # lazy

    class Book(Base):
        __tablename__ = "demo_book"
        id = sa.Column(sa.Integer, primary_key=True)
        author_id = sa.Column(sa.ForeignKey("demo_author.id"))
        title = sa.Column(sa.String(80))
        author = relationship("Author", back_populates="books")

    return Base, Author, Book


class Repository:
    """What a service's synchronous data-access layer looks like: no async anywhere."""

    def __init__(self, session, Author):
        self.session = session
        self.Author = Author

    def author_and_titles(self, author_id):
        import sqlalchemy as sa

        self.session.execute(sa.text("SELECT SLEEP(%s)" % SLEEP))  # a slow query
        author = self.session.get(self.Author, author_id)
        return author.name, [b.title for b in author.books]  # the lazy load: another query


def url(driver, socket):
    user = os.environ.get("AMBISQL_DEMO_USER", "ambisql")
    pw = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
    return "mysql+%s://%s:%s@localhost/ambisql_test?unix_socket=%s" % (driver, user, pw, socket)


def setup(socket, authors=20):
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    Base, Author, Book = model()
    engine = sa.create_engine(url("ambisql", socket))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([Author(id=i, name="author %d" % i, books=[Book(title="book %d.%d" % (i, j)) for j in range(3)])
                   for i in range(1, authors + 1)])
        s.commit()
    engine.dispose()


def check(results, n):
    assert len(results) == n and all(len(titles) == 3 for _, titles in results), results[:3]


# ---- one mode, in this process; returns the wall time of `n` requests
def run_mode(mode, socket, n):
    pool = dict(pool_size=n, max_overflow=0, pool_timeout=60)
    if mode in ("b", "e", "f"):
        import eventlet

        eventlet.monkey_patch()
        import ambisql.green

        if mode == "b":
            ambisql.green.patch_eventlet()
        driver = {"b": "ambisql", "e": "mysqldb", "f": "pymysql"}[mode]
        return run_green(eventlet.GreenPool(n).imap, driver, socket, n, pool)
    if mode == "c":
        from gevent import monkey

        monkey.patch_all()
        import gevent.pool

        import ambisql.green

        ambisql.green.patch_gevent()
        return run_green(gevent.pool.Pool(n).imap, "ambisql", socket, n, pool)
    if mode == "d":
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n) as ex:
            return run_green(ex.map, "ambisql", socket, n, pool)
    if mode in ("h", "i", "j"):
        return run_twisted(mode, socket, n)
    if mode == "k":
        return run_trio(socket, n, pool)
    return run_asyncio(mode, socket, n, pool)


def run_green(imap, driver, socket, n, pool):
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    _, Author, _ = model()
    engine = sa.create_engine(url(driver, socket), **pool)

    def request(i):
        with Session(engine) as s:
            return Repository(s, Author).author_and_titles(1 + i % 20)

    t = time.perf_counter()
    results = list(imap(request, range(n)))
    took = time.perf_counter() - t
    check(results, n)
    engine.dispose()
    return took


def run_asyncio(mode, socket, n, pool):
    import asyncio

    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.orm import Session

    import ambisql.aio

    _, Author, _ = model()

    async def main():
        if mode == "a2":  # the plain sync engine, its waits served by this loop
            engine = sa.create_engine(url("ambisql", socket), **pool)

            def handler_sync(i):
                with Session(engine) as s:
                    return Repository(s, Author).author_and_titles(1 + i % 20)

            async def handler(i):
                return await ambisql.aio.run_sync(handler_sync, i)
        else:
            engine = create_async_engine(url("ambisql_async" if mode == "a" else "aiomysql", socket), **pool)

            async def handler(i):
                async with AsyncSession(engine) as s:
                    return await s.run_sync(lambda ss: Repository(ss, Author).author_and_titles(1 + i % 20))

        t = time.perf_counter()
        results = await asyncio.gather(*(handler(i) for i in range(n)))
        took = time.perf_counter() - t
        check(results, n)
        if mode == "a2":
            engine.dispose()
        else:
            await engine.dispose()
        return took

    return asyncio.run(main())


def run_twisted(mode, socket, n):
    # The ORM layer inside runInteraction, on the interaction's own connection: an engine
    # whose connections are the pool's (adbapi's Connection, whose close() leaves the
    # connection to the pool; the pool commits or rolls back after the interaction).
    import greenlet
    import sqlalchemy as sa
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import NullPool
    from twisted.internet import defer, reactor

    if mode == "j":
        from ambisql.twisted import ConnectionPool
    else:
        from twisted.enterprise.adbapi import ConnectionPool
    _, Author, _ = model()
    user = os.environ.get("AMBISQL_DEMO_USER", "ambisql")
    pw = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
    dbpool = ConnectionPool("pymysql" if mode == "i" else "MySQLdb", unix_socket=socket, user=user, passwd=pw,
                            db="ambisql_test", cp_min=n, cp_max=n)
    current = {}  # the running interaction's connection, by greenlet (a thread's: its main one)
    engine = sa.create_engine("mysql+%s://" % {"h": "mysqldb", "i": "pymysql", "j": "ambisql"}[mode],
                              creator=lambda: current[greenlet.getcurrent()], poolclass=NullPool)

    def request(txn, i):
        current[greenlet.getcurrent()] = txn._connection
        try:
            with Session(engine) as s:
                return Repository(s, Author).author_and_titles(1 + i % 20)
        finally:
            del current[greenlet.getcurrent()]

    took = []

    async def main():
        await defer.gatherResults([dbpool.runQuery("SELECT 1") for _ in range(n)])  # connected
        t = time.perf_counter()
        results = await defer.gatherResults([dbpool.runInteraction(request, i) for i in range(n)])
        took.append(time.perf_counter() - t)
        check(results, n)
        dbpool.close()

    def go():
        d = defer.ensureDeferred(main())
        d.addErrback(lambda f: (took.append(f), f.printTraceback()))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run()
    if not took or not isinstance(took[0], float):
        sys.exit("failed")
    return took[0]


def run_trio(socket, n, pool):
    import sqlalchemy as sa
    import trio
    from sqlalchemy.orm import Session

    import ambisql.trio

    _, Author, _ = model()
    engine = sa.create_engine(url("ambisql", socket), **pool)

    def handler_sync(i, results):
        with Session(engine) as s:
            results.append(Repository(s, Author).author_and_titles(1 + i % 20))

    async def main():
        results = []
        t = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(ambisql.trio.run_sync, handler_sync, i, results)
        took = time.perf_counter() - t
        check(results, n)
        engine.dispose()
        return took

    return trio.run(main)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", default=os.environ.get("AMBISQL_TEST_SOCKET"))
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--mode")
    a = ap.parse_args()
    if not a.socket:
        sys.exit("give --socket (the server's unix socket) or set AMBISQL_TEST_SOCKET")
    if a.mode:  # one mode, in this process
        print("%.3f" % run_mode(a.mode, a.socket, a.requests))
        return
    setup(a.socket)
    n = a.requests
    print("%d requests, each SELECT SLEEP(%.2f) then a lazy load, one synchronous ORM layer "
          "(serialized: at least %.1f s)" % (n, SLEEP, n * SLEEP))
    print("%-4s %-48s %10s %12s" % ("", "model", "wall s", "requests/s"))
    for m in a.modes.split(","):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--socket", a.socket,
                              "--requests", str(n), "--mode", m], capture_output=True, text=True)
        if out.returncode != 0:
            print("%-4s %-48s failed: %s" % (m, MODES[m], out.stderr.strip().splitlines()[-1:]))
            continue
        took = float(out.stdout.strip().splitlines()[-1])
        print("%-4s %-48s %10.2f %12.0f" % (m, MODES[m], took, n / took))


if __name__ == "__main__":
    main()
