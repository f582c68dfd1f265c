"""Fixtures: connections to the test server that scripts/server started (its settings
come from `scripts/server env`, exported by scripts/test)."""
import os
import time
import uuid

import pytest

import ambisql


def server_kwargs(**over):
    kw = dict(host="127.0.0.1", port=int(os.environ["AMBISQL_TEST_PORT"]), user="ambisql",
              password=os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), database="ambisql_test",
              ssl_mode="disabled")
    kw.update(over)
    return kw


def socket_kwargs(**over):
    kw = dict(unix_socket=os.environ["AMBISQL_TEST_SOCKET"], user="ambisql",
              password=os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), database="ambisql_test")
    kw.update(over)
    return kw


@pytest.fixture
def kwargs():
    return server_kwargs()


@pytest.fixture
def conn():
    c = ambisql.connect(**server_kwargs())
    yield c
    if c.open:
        c.close()


@pytest.fixture
def table(conn):
    """A fresh table name, dropped afterwards."""
    name = "py_" + uuid.uuid4().hex[:12]
    yield name
    if conn.open and not conn._c.busy:
        try:
            conn.rollback()  # its transaction's metadata locks would hold the DROP up
        except ambisql.Error:
            pass
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    # A failed test may leave a connection in a transaction on the table (its frames kept
    # by the report): the DROP waits for it at most this long, never the whole run.
    admin.cursor().execute("SET SESSION lock_wait_timeout = 10")
    try:
        admin.cursor().execute("DROP TABLE IF EXISTS " + name)
    except ambisql.OperationalError:
        pass
    admin.close()


def ended(marker, within=2.0):
    """Whether every statement containing `marker` has ended on the server within `within`
    seconds: a killed statement stays listed a moment after its client has the error
    (longer on a loaded machine), one left running (a SLEEP(10)) for seconds."""
    deadline = time.monotonic() + within
    while running(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def running(marker):
    """How many statements containing `marker` run on the server now."""
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    cur = admin.cursor()
    cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
                ("%" + marker + "%",))
    n = cur.fetchone()[0]
    admin.close()
    return n


def sqlalchemy_url():
    kw = socket_kwargs()
    return "mysql+ambisql://%s:%s@localhost/ambisql_test?unix_socket=%s" % (kw["user"], kw["password"], kw["unix_socket"])


def exhausted_pool(timeout=0.3):
    """A sync mysql+ambisql engine with one pooled connection and a pool timeout of
    `timeout` s; hold() keeps that connection for 1 s; want() asks for another, expects
    the pool's TimeoutError and returns how long it took. Returns (engine, hold, want)."""
    import sqlalchemy as sa

    engine = sa.create_engine(sqlalchemy_url(), pool_size=1, max_overflow=0, pool_timeout=timeout)

    def hold():
        with engine.connect() as c:
            c.execute(sa.text("SELECT SLEEP(1)"))

    def want():
        t = time.monotonic()
        try:
            with engine.connect():
                pass
        except sa.exc.TimeoutError:
            return time.monotonic() - t
        raise AssertionError("a connection from an exhausted pool")

    return engine, hold, want


def authors_and_books(prefix, authors=20, **engine_kwargs):
    """A fresh ORM model (Author with lazily loaded books, two each; tables named after
    `prefix` and a random suffix), its sync mysql+ambisql engine over the unix socket, and
    setup(): creates the tables and the authors 1..`authors`. Returns
    (Base, Author, engine, setup)."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session, declarative_base, relationship

    Base = declarative_base()
    suffix = uuid.uuid4().hex[:8]

    class Author(Base):
        __tablename__ = prefix + "_author_" + suffix
        id = sa.Column(sa.Integer, primary_key=True)
        books = relationship("Book", lazy="select")

    class Book(Base):
        __tablename__ = prefix + "_book_" + suffix
        id = sa.Column(sa.Integer, primary_key=True)
        author_id = sa.Column(sa.ForeignKey(Author.id))

    engine = sa.create_engine(sqlalchemy_url(), **engine_kwargs)

    def setup():
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            s.add_all([Author(id=i, books=[Book(), Book()]) for i in range(1, authors + 1)])
            s.commit()

    return Base, Author, engine, setup
