"""asyncio: ambisql's connections driven by the running event loop (the default loop or
uvloop), with no threads and no executor.

    conn = await ambisql.aio.connect(host=..., user=..., password=..., db=...)
    async with conn.cursor() as cur:
        await cur.execute("SELECT c FROM t WHERE id = %s", (1,))
        row = await cur.fetchone()
    await conn.close()

Every wait is a loop.add_reader / add_writer on the connection's socket. Cancelling the
task (task.cancel(), asyncio.timeout, wait_for) mid-query kills the command on the server
and reads its answer, so the connection stays usable (or is closed), never out of step.
Two tasks on one connection at once: the second gets ProgrammingError (2014).

The bridge: `await run_sync(fn, *args)` runs synchronous code (any DB-API code on ambisql:
a sync SQLAlchemy Session on mysql+ambisql, a repository class) on a greenlet whose every
database wait is served by this loop; inside it, `await_(awaitable)` waits for an
awaitable. Cancelling the awaiting task reaches the database call inside `fn`."""
import asyncio
import sys
from typing import Any, Optional

from greenlet import getcurrent, greenlet

from . import connections, cursors, err
from ._ambisql import POLL_OK
from ._loop import drive

__all__ = ["connect", "Connection", "Cursor", "DictCursor", "SSCursor", "SSDictCursor", "run_sync", "await_"]


class _Bridge(greenlet):
    # ambisql's waits (and await_()) switch to the parent, which awaits what they hand over
    # and switches back with the outcome. The task's context variables carry over.
    def __init__(self, fn, parent):
        greenlet.__init__(self, fn, parent)
        self.gr_context = parent.gr_context


connections._register_bridge(_Bridge)


def _under_trio():
    # Whether the caller runs under trio (directly or through anyio): ambisql.trio then.
    if "trio" not in sys.modules:
        return False
    import sniffio

    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


async def run_sync(fn, *args, **kwargs):
    """Runs fn(*args, **kwargs) on a greenlet whose waits (ambisql's, and await_()'s) are
    served by the running loop; returns its result or raises its exception. (Under trio:
    ambisql.trio.run_sync.)"""
    if _under_trio():
        from . import trio

        return await trio.run_sync(fn, *args, **kwargs)
    return await _run_on_bridge(fn, *args, **kwargs)


async def _run_on_bridge(fn, *args, **kwargs):
    g = _Bridge(fn, getcurrent())
    result = g.switch(*args, **kwargs)
    while not g.dead:
        try:
            value = await result
        except BaseException:
            result = g.throw(*sys.exc_info())
        else:
            result = g.switch(value)
    return result


def await_(awaitable):
    """From synchronous code running under run_sync(): waits for `awaitable` on the loop
    and returns its result."""
    g = getcurrent()
    wait = getattr(type(g), "_ambisql_await", None)
    if wait is not None:  # a fiber of ambisql.trio's
        return wait(awaitable)
    if not isinstance(g, connections._bridges):
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise err.InterfaceError(0, "await_() outside ambisql.aio.run_sync()")
    return g.parent.switch(awaitable)


class _Done:
    """What close() returns: it has already happened, and may be awaited."""

    __slots__ = ()

    def __await__(self):
        return iter(())


_DONE = _Done()


class Connection(connections.ConnectionView):
    """An asyncio connection (ambisql.aio.connect() makes one). Its methods that talk to
    the server are coroutines."""

    def __init__(self, sync):
        self._sync = sync

    # What runs synchronous work, and what waits for a started query, on this connection's
    # event loop (ambisql.trio's connection has its own).
    @staticmethod
    def _run_sync(fn, *args):
        return _run_on_bridge(fn, *args)

    @staticmethod
    def _wait_query(c, sync, state=None):
        return drive(c, sync._reader, state)

    def cursor(self, cursorclass: Any = None, prepared: Optional[bool] = None) -> "Cursor":
        """A cursor; `async with conn.cursor() as cur` and `await conn.cursor()` work too."""
        cls = cursorclass or Cursor
        if not (isinstance(cls, type) and issubclass(cls, Cursor)):
            cls = _ASYNC_OF.get(cls, Cursor)
        return cls(self, self._sync.cursor(cls._sync_class, prepared=prepared))

    async def commit(self) -> None:
        await self._run_sync(self._sync.commit)

    async def rollback(self):
        await self._run_sync(self._sync.rollback)

    async def begin(self):
        await self._run_sync(self._sync.begin)

    async def ping(self, reconnect=False):
        return await self._run_sync(self._sync.ping, reconnect)

    async def autocommit(self, on):
        await self._run_sync(self._sync.autocommit, on)

    async def select_db(self, db):
        await self._run_sync(self._sync.select_db, db)

    async def reset_connection(self):
        await self._run_sync(self._sync.reset_connection)

    def close(self):
        """Closes the socket at once (awaitable too). A connection closed, or never closed
        before its loop is gone, needs no loop to be collected."""
        if self._sync._c is not None:
            self._sync.close()
        return _DONE

    async def ensure_closed(self):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.close()



async def connect(*args: Any, loop: Any = None, **kwargs: Any) -> "Connection":
    """An asyncio Connection: ambisql.connect()'s keyword arguments (host, port, user,
    password, db, unix_socket, charset, autocommit, ssl, url, ...). Under trio, an
    ambisql.trio connection (the same API)."""
    if _under_trio():
        from . import trio

        return await trio.connect(*args, **kwargs)
    sync = await run_sync(connections.Connection, *args, **connections._loop_connect_kwargs(kwargs))
    return Connection(sync)


class Cursor(cursors.CursorView):
    """Buffered: execute() reads every row; the fetches then need no waiting."""

    _sync_class = cursors.Cursor

    async def execute(self, query: str, args: Any = None) -> int:
        cur = self._cur
        c = cur._quick_start(query, args)
        if c is not None:  # a buffered text query: the loop waits for it directly
            state = c.poll()
            if state != POLL_OK:
                await self.connection._wait_query(c, cur.connection, state)
            return cur._quick_take(c)
        if cur._stream:  # an earlier result may need reading to its end first
            return await self.connection._run_sync(cur.execute, query, args)
        conn = cur._begin(query, args)
        await self.connection._wait_query(conn._c, conn)
        cur._take()
        return cur.rowcount

    async def executemany(self, query, args):
        return await self.connection._run_sync(self._cur.executemany, query, args)

    async def callproc(self, procname, args=()):
        return await self.connection._run_sync(self._cur.callproc, procname, args)

    async def nextset(self):
        return await self.connection._run_sync(self._cur.nextset)

    async def fetchone(self) -> Any:
        return self._cur.fetchone()

    async def fetchmany(self, size=None):
        return self._cur.fetchmany(size)

    async def fetchall(self) -> Any:
        return self._cur.fetchall()

    async def scroll(self, value, mode="relative"):
        self._cur.scroll(value, mode)

    def close(self):
        """Closes the cursor (awaitable too)."""
        self._cur.close()
        return _DONE

    def __await__(self):
        return self._self().__await__()

    async def _self(self):
        return self

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self._aclose()

    async def _aclose(self):
        self._cur.close()

    def __aiter__(self):
        return self

    async def __anext__(self):
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class DictCursor(Cursor):
    _sync_class = cursors.DictCursor


class SSCursor(Cursor):
    """Unbuffered: rows are read in batches as they are fetched (a result of any size in
    little memory); close() reads and drops the rest, so await it."""

    _sync_class = cursors.SSCursor

    async def fetchone(self):
        cur = self._cur
        if cur._bpos < len(cur._batch):  # rows at hand: no wait
            return cur.fetchone()
        return await self.connection._run_sync(cur.fetchone)

    async def fetchmany(self, size=None):
        return await self.connection._run_sync(self._cur.fetchmany, size)

    async def fetchall(self):
        return await self.connection._run_sync(self._cur.fetchall)

    async def scroll(self, value, mode="relative"):
        await self.connection._run_sync(self._cur.scroll, value, mode)

    def close(self):
        """Reads and drops the rest of the result: await it."""
        return self._aclose()

    async def _aclose(self):
        await self.connection._run_sync(self._cur.close)


class SSDictCursor(SSCursor):
    _sync_class = cursors.SSDictCursor


# conn.cursor(ambisql.cursors.X) means the asyncio cursor of that kind
_ASYNC_OF = {
    cursors.Cursor: Cursor,
    cursors.DictCursor: DictCursor,
    cursors.SSCursor: SSCursor,
    cursors.SSDictCursor: SSDictCursor,
}
