"""SQLAlchemy dialects (1.4, 2.0 and 2.1: one code base), registered by entry points when
ambisql is installed:

- ``mysql+ambisql://user:pw@host/db?unix_socket=...``: synchronous (threads, and gevent or
  eventlet after ambisql.green.patch_gevent() / patch_eventlet());
- ``mysql+ambisql_async://...`` for create_async_engine / AsyncSession: the same
  synchronous connection, whose every wait, on SQLAlchemy's greenlet, is served by the
  running asyncio loop (no adapter layer between the ORM and the driver; outside a
  greenlet, e.g. a connection collected without a loop, it simply blocks).

Both build on SQLAlchemy's MySQL dialect for MySQLdb, whose DB-API ambisql follows."""
import asyncio
import collections
import threading
import time

import sqlalchemy
from sqlalchemy import exc, pool, util
from sqlalchemy.dialects.mysql.mariadb import MariaDBDialect
from sqlalchemy.dialects.mysql.mysqldb import MySQLDialect_mysqldb
from sqlalchemy.engine import AdaptedConnection

from . import connections, cursors

# SQLAlchemy 2.x calls a dialect's import_dbapi() and warns about a dbapi() classmethod;
# 1.4 knows only dbapi().
_SQLALCHEMY_1 = int(sqlalchemy.__version__.split(".")[0]) < 2


def _register_sqlalchemy_bridge():
    # SQLAlchemy's greenlet_spawn() parents await what their greenlet hands them: ambisql's
    # waits on such a greenlet go through the loop. Its greenlet class is private (and moved
    # in 2.1), so it is learnt from the greenlet an async connect runs on: 2.x marks it with
    # __sqlalchemy_greenlet_provider__, 1.4 by its module.
    g = connections._getcurrent()
    if g is None or g.parent is None:
        return
    cls = type(g)
    if getattr(g, "__sqlalchemy_greenlet_provider__", False) or cls.__module__.startswith("sqlalchemy."):
        connections._register_bridge(cls)


def _on_bridge():
    # True on a greenlet whose waits are an event loop's (ambisql.aio.run_sync's,
    # SQLAlchemy's async adaptation, a Twisted or trio fiber): a thread-blocking wait there
    # would stop the loop.
    return bool(connections._bridges) and isinstance(connections._getcurrent(), connections._bridges)


def _bridge_event():
    """(wait, wake): wait(timeout=None) suspends the greenlet (its event loop runs on) until
    wake() is called (from any thread) or `timeout` seconds have passed. A fiber class
    makes its own (_ambisql_event); else it is a future of the asyncio loop the greenlet's
    parent runs."""
    g = connections._getcurrent()
    make = getattr(type(g), "_ambisql_event", None)
    if make is not None:
        return make()
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def wake():  # (a thread holding the lock may release it)
        loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))

    def wait(timeout=None):
        g.parent.switch(asyncio.wait([fut], timeout=timeout))

    return wait, wake


class _BridgeWaiters:
    """Greenlets whose waits are an event loop's, waiting (in order) for something that is
    handed on one waiter at a time: wake_one() from whoever frees it, in any thread."""

    def __init__(self):
        self._wakes = collections.deque()  # the wake() of each greenlet waiting

    def wait(self, ready, timeout=None):
        """Suspends the greenlet until woken or `timeout` seconds have passed; at once when
        ready() says so once it is queued (so a wake-up just before it is not lost)."""
        wait, wake = _bridge_event()
        self._wakes.append(wake)
        try:
            if not ready():
                wait(timeout)
        except BaseException:
            if wake in self._wakes:
                self._wakes.remove(wake)
            else:  # woken, and leaving: the wake-up goes to the next
                self.wake_one()
            raise
        if wake in self._wakes:
            self._wakes.remove(wake)

    def wake_one(self):
        if self._wakes:
            self._wakes.popleft()()


class _BridgeAwareLock:
    """A mutex for the sync engine's once-only first-connect work, which runs queries while
    holding it: on a greenlet whose waits are an event loop's, another holder's queries run
    on the same loop, so the wait for the mutex goes through the loop too, woken by the
    release (one waiter per release, in order); in threads it is a plain lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiters = _BridgeWaiters()

    def __enter__(self):
        if self._lock.acquire(blocking=False):
            return self
        if not _on_bridge():
            self._lock.acquire()
            return self
        while not self._lock.acquire(blocking=False):
            self._waiters.wait(lambda: not self._lock.locked())
        return self

    def __exit__(self, *exc_info):
        self._lock.release()
        self._waiters.wake_one()


class BridgeAwareQueuePool(pool.QueuePool):
    """SQLAlchemy's QueuePool, whose wait for a connection when every one is checked out
    goes through the loop on a run_sync greenlet, woken when a connection comes back or
    its place is freed (one waiter each time, in order), or at the pool's timeout;
    elsewhere it is QueuePool's own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._bridge_waiters = _BridgeWaiters()

    def _exhausted(self):
        return self._max_overflow > -1 and self._pool.qsize() == 0 and self._overflow >= self._max_overflow

    def _do_get(self):
        if self._exhausted() and _on_bridge():
            deadline = time.monotonic() + self._timeout
            while self._exhausted():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise exc.TimeoutError(
                        "QueuePool limit of size %d overflow %d reached, connection timed out, timeout %0.2f"
                        % (self.size(), self.overflow(), self._timeout), code="3o7r")
                self._bridge_waiters.wait(lambda: not self._exhausted(), left)
        return super()._do_get()

    def _do_return_conn(self, record):
        super()._do_return_conn(record)
        self._bridge_waiters.wake_one()

    def _dec_overflow(self):
        r = super()._dec_overflow()
        self._bridge_waiters.wake_one()
        return r


class AmbisqlDialect(MySQLDialect_mysqldb):
    driver = "ambisql"
    supports_statement_cache = True
    supports_server_side_cursors = True
    _sscursor = cursors.SSCursor
    description_encoding = None
    supports_unicode_statements = True
    supports_unicode_binds = True

    @classmethod
    def import_dbapi(cls):
        return __import__("ambisql")

    if _SQLALCHEMY_1:
        dbapi = import_dbapi

    def create_connect_args(self, url, _translate_args=None):
        if _translate_args is None:
            _translate_args = dict(username="user", database="database", password="password")
        args, opts = super().create_connect_args(url, _translate_args=_translate_args)
        opts.pop("async_fallback", None)
        util.coerce_kw_type(opts, "get_server_public_key", bool)
        util.coerce_kw_type(opts, "galera_check", bool)
        util.coerce_kw_type(opts, "wsrep_sync_wait", int)
        util.coerce_kw_type(opts, "host_backoff", float)
        return args, opts

    def is_disconnect(self, e, connection, cursor):
        if super().is_disconnect(e, connection, cursor):
            return True
        if isinstance(e, self.dbapi.InterfaceError):
            # ambisql's "the connection is closed" (MySQLdb and PyMySQL say "(0, '')")
            return "closed" in str(e)
        return False

    def _found_rows_client_flag(self):
        from .constants import CLIENT

        return CLIENT.FOUND_ROWS

    # A plain sync engine also serves synchronous code that ambisql.aio.run_sync runs on an
    # asyncio loop: its pool and first-connect mutex then wait through the loop.
    @classmethod
    def get_pool_class(cls, url):
        return BridgeAwareQueuePool

    @classmethod
    def engine_created(cls, engine):
        if not cls.is_async:  # (create_engine runs the dialect's initialization on "connect", once)
            for listeners in (engine.pool.dispatch.connect, engine.pool.dispatch.first_connect):
                if hasattr(listeners, "_exec_once_mutex"):
                    listeners._exec_once_mutex = _BridgeAwareLock()


class AsyncAdaptedConnection(AdaptedConnection):
    """What SQLAlchemy's asyncio pool holds: the synchronous ambisql connection (its waits,
    on SQLAlchemy's greenlets, go through the loop)."""

    __slots__ = ("dbapi",)

    def __init__(self, dbapi, connection):
        self.dbapi = dbapi
        self._connection = connection

    def cursor(self, cursorclass=None):
        return self._connection.cursor(cursorclass)

    def commit(self):
        self._connection.commit()

    def rollback(self):
        self._connection.rollback()

    def ping(self, reconnect=False):
        return self._connection.ping(reconnect)

    def autocommit(self, on):
        self._connection.autocommit(on)

    def get_autocommit(self):
        return self._connection.get_autocommit()

    def character_set_name(self):
        return self._connection.character_set_name()

    def close(self):
        c = self._connection
        if c._c is not None:
            c.close()

    def __getattr__(self, name):
        return getattr(self._connection, name)


class _AsyncDBAPI:
    """ambisql's DB-API module, with connect() returning the adapted connection."""

    def __init__(self):
        import ambisql

        self._module = ambisql
        self.__name__ = ambisql.__name__
        self.paramstyle = ambisql.paramstyle

    def connect(self, *args, **kwargs):
        _register_sqlalchemy_bridge()  # (before the connect's own waits)
        return AsyncAdaptedConnection(self, self._module.connect(*args, **kwargs))

    def __getattr__(self, name):
        return getattr(self._module, name)


class AmbisqlDialect_async(AmbisqlDialect):
    driver = "ambisql_async"
    supports_statement_cache = True
    is_async = True

    @classmethod
    def import_dbapi(cls):
        return _AsyncDBAPI()

    if _SQLALCHEMY_1:
        dbapi = import_dbapi

    @classmethod
    def get_pool_class(cls, url):
        fallback = getattr(pool, "FallbackAsyncAdaptedQueuePool", None)  # (1.4 and 2.0; gone in 2.1)
        if fallback is not None and util.asbool(url.query.get("async_fallback", False)):
            return fallback
        return pool.AsyncAdaptedQueuePool

    def get_driver_connection(self, connection):
        return connection._connection

    # A connection the garbage collector finds checked out is closed without any I/O on a
    # loop (which may be gone): no reset to await.
    has_terminate = True

    def do_terminate(self, dbapi_connection):
        dbapi_connection.close()


# mariadb+ambisql:// and mariadb+ambisql_async:// (SQLAlchemy's MariaDB-only URLs)
class MariaDBDialect_ambisql(MariaDBDialect, AmbisqlDialect):
    supports_statement_cache = True


class MariaDBDialect_ambisql_async(MariaDBDialect, AmbisqlDialect_async):
    supports_statement_cache = True


dialect = AmbisqlDialect
