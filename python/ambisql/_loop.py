"""Driving a connection's running operation from the asyncio loop in charge: every wait is a
loop.add_reader / add_writer on the socket the core names (no threads, no executor).
Cancellation (task.cancel(), asyncio.timeout, wait_for) kills the command on the server
and reads its answer, so the connection stays in step (or is closed).

An established connection keeps its read registration with the loop between operations (a
_Reader), which is also what the operation awaits: a query then costs one loop pass and no
future, not an epoll_ctl pair, two handles and a second pass as well. Since nothing is read
between operations, the socket is quiet while registered; should it turn readable with
nobody waiting (the server closing it), the registration removes itself. It is dropped before the socket can close or change: on any
error or cancellation, on close, and on reconnect (the owner's job)."""
import sys
from asyncio import CancelledError, InvalidStateError, get_running_loop
from contextvars import copy_context

from . import err
from ._ambisql import POLL_OK, POLL_READ


def _wake(fut):
    if not fut.done():
        fut.set_result(None)


class _Reader:
    """A connection's standing read registration with one loop, and what an operation awaits
    while it waits to read: a future-like object (asyncio's protocol for those: the task
    hands it its wake-up callback and context). The loop's readiness callback polls the
    operation itself and wakes the task only when it needs something else (done, failed,
    wants to write), and wakes it there and then, in the same loop pass: with a future, the
    task would wake in the next one (its callbacks are scheduled, never called), which on
    the default loop is a second select and Python's pass over the loop per query. A result
    arriving in several reads costs a read attempt each, not a task wake-up."""

    # (asyncio reads a future-like object's loop from get_loop() or else `_loop`: the
    # attribute costs the task no call)
    __slots__ = ("_loop", "fd", "c", "state", "exc", "wake", "ctx", "_asyncio_future_blocking", "other")

    def __init__(self):
        self._loop = None
        self.fd = -1
        self.c = self.state = self.exc = self.wake = self.ctx = None
        self._asyncio_future_blocking = False
        self.other = None  # _pump's wait on a future, if any: (loop, fd, state, future)

    def _ready(self):
        c = self.c
        if c is None:  # readable with nobody waiting: stop watching
            self.detach(other_too=False)
            return
        try:
            state = c.poll()
        except BaseException as e:
            self.exc = e
        else:
            if state == POLL_READ:
                return
            self.state = state
        self.c = None
        wake, ctx = self.wake, self.ctx
        if wake is not None:
            self.wake = self.ctx = None
            ctx.run(wake, self)  # the task's step, now

    def wait(self, loop, fd, c):
        """An awaitable of `c`'s poll() state once it is no longer POLL_READ."""
        if self._loop is not loop or self.fd != fd:
            self.detach()
            loop.add_reader(fd, self._ready)
            self._loop, self.fd = loop, fd
        self.c = c
        self.state = self.exc = None
        return self

    def __await__(self):
        if self.c is not None:
            self._asyncio_future_blocking = True
            try:
                yield self
            except BaseException:  # thrown in (GeneratorExit: the awaiting coroutine closed)
                self.c = self.wake = self.ctx = None  # nobody waits: detach() wakes no one
                raise
        if self.exc is None and self.c is None:  # (the task's wake-up called result())
            return self.state
        return self.result()

    __iter__ = __await__

    # ---- the future protocol, as asyncio's Task uses it
    def add_done_callback(self, fn, *, context=None):
        if context is None:
            context = copy_context()
        if self.c is None:  # done (or cancelled) already
            self._loop.call_soon(fn, self, context=context)
        else:
            self.wake, self.ctx = fn, context

    def remove_done_callback(self, fn):
        if self.wake is fn:
            self.wake = self.ctx = None
            return 1
        return 0

    def done(self):
        return self.c is None

    def cancelled(self):
        return self.c is None and self.state is _CANCELLED

    def cancel(self, msg=None):
        if self.c is None:
            return False
        self.c = None
        self.state = _CANCELLED
        self.exc = CancelledError() if msg is None else CancelledError(msg)
        wake = self.wake
        if wake is not None:
            self.wake = None
            self._loop.call_soon(wake, self, context=self.ctx)
        return True

    def result(self):
        e = self.exc
        if e is not None:
            self.exc = None  # (no cycle through its traceback)
            raise e
        if self.c is not None:
            raise InvalidStateError("the read is still waiting")
        return self.state

    def exception(self):
        return self.exc

    def __repr__(self):
        return "<ambisql read wait fd=%d %s>" % (self.fd, "pending" if self.c is not None else "done")

    def detach(self, other_too=True):
        """Stops watching the socket. A task still waiting on it (the connection closed or
        reopened under it, from elsewhere) wakes with an error. So does one in another wait
        of _pump's (a send, a read with a deadline, a cancellation's side connection): its
        registration is dropped before the socket can close (uvloop aborts the process on
        one left behind), and its next poll() reports what became of the connection."""
        other = self.other
        if other is not None and other_too:
            self.other = None
            _unregister(other)
            _wake(other[3])
        wake, ctx = self.wake, self.ctx
        if self.c is not None:
            self.state = None
            self.exc = err.OperationalError(2013, "Lost connection to MySQL server during query (closed while waiting)")
        self.c = self.wake = self.ctx = None
        loop = self._loop
        if loop is not None:
            self._loop = None
            try:
                loop.remove_reader(self.fd)
                if wake is not None:
                    loop.call_soon(wake, self, context=ctx)
            except Exception:  # the loop is closed, or gone with its thread: nothing to undo
                pass


_CANCELLED = object()


def _unregister(wait):
    loop, fd, state, _ = wait
    try:
        if state == POLL_READ:
            loop.remove_reader(fd)
        else:
            loop.remove_writer(fd)
    except Exception:  # the loop is closed: nothing to undo
        pass


async def _pump(loop, c, state, reader=None, standing=True):
    # Waits on the socket (or until the operation's deadline, after which poll() reports
    # the timeout) and polls again, until the operation is done; raises its error.
    # `reader`: the connection's _Reader, whose detach() (the connection closed from
    # elsewhere) ends any of these waits; `standing`: reads without a deadline may wait
    # through it.
    while state != POLL_OK:
        fd = c.fileno()
        t = c.timeout()
        if standing and reader is not None and state == POLL_READ and t is None:
            state = await reader.wait(loop, fd, c)
            continue
        fut = loop.create_future()
        if state == POLL_READ:
            if reader is not None:
                reader.detach()
            loop.add_reader(fd, _wake, fut)
        else:
            loop.add_writer(fd, _wake, fut)
        wait = (loop, fd, state, fut)
        if reader is not None:
            reader.other = wait
        timer = loop.call_later(t, _wake, fut) if t is not None else None
        try:
            await fut
        finally:  # (a cancellation too: nothing stays registered)
            if reader is None or reader.other is wait:  # (else detach() dropped it)
                if reader is not None:
                    reader.other = None
                _unregister(wait)
            if timer is not None:
                timer.cancel()
        state = c.poll()


async def drive(c, reader=None, state=None, standing=True):
    """Runs `c`'s operation (an _ambisql._Conn with one started) to its end; raises its
    error. Cancelled: the command is killed on the server and its answer read before the
    CancelledError goes on. `reader`: the connection's _Reader, whose detach() (a close
    from elsewhere) ends the wait; `standing`: whether reads may wait through its standing
    registration (not while connecting: a failover may reopen the socket under the same
    number); `state`: what c.poll() said last, if the caller polled."""
    if state is None:
        state = c.poll()
    if state == POLL_OK:
        return
    loop = get_running_loop()
    try:
        if standing and reader is not None and state == POLL_READ and c.timeout() is None:
            state = await reader.wait(loop, c.fileno(), c)  # the usual case: one wait
            if state == POLL_OK:
                return
        await _pump(loop, c, state, reader, standing)
    except CancelledError:
        if reader is not None:
            reader.detach()
        await _cancel(loop, c, reader)
        raise
    except BaseException:
        # Anything else (KeyboardInterrupt, SystemExit, GeneratorExit: the coroutine closed)
        # may leave no loop to await on: the cancellation is driven blocking (the core's
        # rule bounds it: a second interrupt, or the cancel timeout, closes the connection),
        # so the command never runs on with the connection out of step.
        if reader is not None:
            reader.detach()
        c.abort()
        raise


async def _cancel(loop, c, reader=None):
    # The core's rule (_Conn.cancel()): the command is killed on the server and its answer
    # read (its outcome, interrupted or completed before the KILL landed, does not matter
    # to the cancelled caller); interrupted again meanwhile, the connection is closed.
    if not c.busy:
        return
    c.cancel()
    try:
        if "anyio" in sys.modules:
            # Under anyio, a cancelled scope cancels its task again at every loop pass
            # until the task leaves it (trio's level-triggered cancellation): the drain
            # shields itself from that, as anyio's clean-up code does; a cancellation
            # from outside anyio's scopes is a second interruption still.
            from anyio import CancelScope

            with CancelScope(shield=True):
                await _pump(loop, c, c.poll(), reader, standing=False)
        else:
            await _pump(loop, c, c.poll(), reader, standing=False)
    except err.Error:
        return
    except CancelledError:
        c.cancel()  # again: closed (the first CancelledError goes on)
    except BaseException:
        c.cancel()
        raise
