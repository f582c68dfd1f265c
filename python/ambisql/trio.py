"""trio: ambisql.aio's API under trio (natively, and so through anyio on its trio backend),
with no threads.

    conn = await ambisql.trio.connect(host=..., user=..., password=..., db=...)
    async with conn.cursor() as cur:
        await cur.execute("SELECT c FROM t WHERE id = %s", (1,))
        row = await cur.fetchone()
    conn.close()

ambisql.aio.connect() and ambisql.aio.run_sync() called under trio come here too. Every
wait is trio.lowlevel.wait_readable / wait_writable on the connection's socket. A cancelled
scope (trio.move_on_after, fail_after, a nursery's cancel) cancels the running query: it is
killed on the server and its answer read under a shield (bounded by the connection's
cancel_timeout), so the connection stays usable, then trio.Cancelled goes on.

The bridge: `await run_sync(fn, *args)` runs synchronous code (a sync SQLAlchemy Session on
mysql+ambisql, a repository) on a fiber whose every database wait is this task's; inside
it, `await_(awaitable)` waits for a trio awaitable."""
import math
import trio

from . import _fiber, aio, connections
from ._ambisql import POLL_OK, POLL_READ

__all__ = ["connect", "Connection", "Cursor", "DictCursor", "SSCursor", "SSDictCursor", "run_sync", "await_"]

Cursor, DictCursor, SSCursor, SSDictCursor = aio.Cursor, aio.DictCursor, aio.SSCursor, aio.SSDictCursor


class _Wait(tuple):
    """What a fiber's wait hands the task: (fd, events, timeout, shielded)."""

    __slots__ = ()


class _Fiber(_fiber.Fiber):
    """Synchronous code whose waits the task that runs it (run_sync) performs: the fiber
    switches to it with a _Wait, or with an awaitable from await_()."""

    pending = None  # an interruption the task met before handing the wait over (_wait_query)

    @staticmethod
    def _ambisql_wait(conn, fd, events, timeout):
        # One wait (the one driver, drive.cpp, polls). A cancellation under way (the core
        # draining a killed command's answer) is waited for shielded: the scope that
        # cancelled the query must not cancel its clean-up.
        g = _fiber.getcurrent()
        e = g.pending
        if e is not None:  # the task was interrupted already: the driver applies the rule
            g.pending = None
            raise e
        c = conn._c
        _fiber.getcurrent().parent.switch(_Wait((fd, events, timeout, c is not None and c.cancelling)))

    @staticmethod
    def _ambisql_await(awaitable):
        return _fiber.getcurrent().parent.switch(awaitable)

    @staticmethod
    def _ambisql_event():
        ev = trio.Event()

        async def wait_for(timeout):
            with trio.move_on_after(timeout if timeout is not None else math.inf):
                await ev.wait()

        return (lambda timeout=None: _fiber.getcurrent().parent.switch(wait_for(timeout))), ev.set


_fiber.register(_Fiber)

_Done = _fiber.Done
_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable


async def run_sync(fn, *args, **kwargs):
    """Runs fn(*args, **kwargs) on a fiber whose waits (ambisql's, await_()'s) this task
    performs; returns its result or raises its exception. A cancellation of the task's
    scope reaches the database call inside `fn` (the query is killed and drained)."""
    g = _Fiber.take()
    g.parent = _fiber.getcurrent()
    req = g.switch((fn, args, kwargs))
    while req.__class__ is not _Done:
        try:
            if req.__class__ is _Wait:
                fd, events, timeout, shielded = req
                if timeout is None and not shielded:
                    await (_wait_readable(fd) if events == POLL_READ else _wait_writable(fd))
                else:
                    with trio.CancelScope(shield=shielded) as scope:
                        if timeout is not None:
                            scope.deadline = trio.current_time() + timeout
                        await (_wait_readable(fd) if events == POLL_READ else _wait_writable(fd))
                value = None
            else:  # await_()'s
                value = await req
        except BaseException as e:
            if not (req.__class__ is _Wait and isinstance(e, trio.ClosedResourceError)):
                req = g.throw(e)
                continue
            value = None  # the connection closed under the wait: its next poll() says so
        req = g.switch(value)
    g.idle()
    e = req.error
    if e is not None:
        try:
            raise e
        finally:
            e = req = None  # (no cycle through the traceback)
    return req.value


def await_(awaitable):
    """From synchronous code running under run_sync(): waits for `awaitable` in the task
    and returns its result."""
    return aio.await_(awaitable)


async def _wait_query(c, sync, state=None):
    # A started query (aio.Cursor.execute's quick path), waited for in the task itself
    # while nothing else is needed: no deadline, its own socket. Otherwise, and on an
    # interruption, the one driver takes over on a fiber (the interruption handed to it,
    # raised by its first wait: it kills the command and drains, shielded, then re-raises).
    if state is None:
        state = c.poll()
    fd = c.fileno()
    try:
        while state != POLL_OK:
            if c.timeout() is not None or c.fileno() != fd:
                return await run_sync(connections._drive_wait, sync)
            try:
                await (_wait_readable(fd) if state == POLL_READ else _wait_writable(fd))
            except trio.ClosedResourceError:  # closed under the wait: poll() says so
                pass
            state = c.poll()
    except BaseException as e:
        if not c.busy:
            raise
        await run_sync(_drive_interrupted, sync, e)
        raise


def _drive_interrupted(sync, e):
    _fiber.getcurrent().pending = e
    try:
        connections._drive_wait(sync)
    finally:
        _fiber.getcurrent().pending = None


class Connection(aio.Connection):
    """ambisql.aio.Connection's API, under trio."""

    _run_sync = staticmethod(run_sync)
    _wait_query = staticmethod(_wait_query)

    def close(self):
        """Closes the socket at once (awaitable too); a task waiting on it wakes with the
        lost connection."""
        fd = self._sync._sock_fd
        if fd >= 0:
            trio.lowlevel.notify_closing(fd)
        return aio.Connection.close(self)


async def connect(*args, **kwargs):
    """An ambisql.trio Connection: ambisql.connect()'s keyword arguments."""
    sync = await run_sync(connections.Connection, *args, **connections._loop_connect_kwargs(kwargs))
    return Connection(sync)
