"""Driving a connection's running operation from the asyncio loop in charge: every wait is a
loop.add_reader / add_writer on the socket the core names (no threads, no executor).
Cancellation (task.cancel(), asyncio.timeout, wait_for) kills the command on the server
and reads its answer, so the connection stays in step (or is closed).

An established connection keeps its read registration with the loop between operations (a
_Reader): a query then costs one future and one loop pass, not an epoll_ctl pair and two
handles as well. Since nothing is read between operations, the socket is quiet while
registered; should it turn readable with nobody waiting (the server closing it), the
registration removes itself. It is dropped before the socket can close or change: on any
error or cancellation, on close, and on reconnect (the owner's job)."""
from asyncio import CancelledError, get_running_loop

from . import err
from ._ambisql import POLL_OK, POLL_READ


def _wake(fut):
    if not fut.done():
        fut.set_result(None)


class _Reader:
    """A connection's standing read registration with one loop. While an operation waits,
    the loop's readiness callback polls the operation itself and wakes the task only
    when it needs something else (done, failed, wants to write): a result arriving in
    several reads, or an event left over from the loop pass that ended the previous
    operation, costs a read attempt, not a task wake-up."""

    __slots__ = ("loop", "fd", "fut", "c")

    def __init__(self):
        self.loop = None
        self.fd = -1
        self.fut = None
        self.c = None

    def _ready(self):
        fut = self.fut
        if fut is None:  # readable with nobody waiting: stop watching
            self.detach()
            return
        if fut.done():  # (cancelled: the task deals with it)
            return
        try:
            state = self.c.poll()
        except BaseException as e:
            self.fut = self.c = None
            fut.set_exception(e)
            return
        if state != POLL_READ:
            self.fut = self.c = None
            fut.set_result(state)

    def wait(self, loop, fd, c):
        """A future of `c`'s poll() state once it is no longer POLL_READ."""
        if self.loop is not loop or self.fd != fd:
            self.detach()
            loop.add_reader(fd, self._ready)
            self.loop, self.fd = loop, fd
        fut = self.fut = loop.create_future()
        self.c = c
        return fut

    def detach(self):
        self.fut = self.c = None
        loop = self.loop
        if loop is not None:
            self.loop = None
            try:
                loop.remove_reader(self.fd)
            except Exception:  # the loop is closed, or gone with its thread: nothing to undo
                pass


async def _pump(loop, c, state, reader=None):
    # Waits on the socket (or until the operation's deadline, after which poll() reports
    # the timeout) and polls again, until the operation is done; raises its error.
    while state != POLL_OK:
        fd = c.fileno()
        t = c.timeout()
        if reader is not None and state == POLL_READ and t is None:
            state = await reader.wait(loop, fd, c)
            continue
        fut = loop.create_future()
        if state == POLL_READ:
            if reader is not None:
                reader.detach()
            loop.add_reader(fd, _wake, fut)
        else:
            loop.add_writer(fd, _wake, fut)
        timer = loop.call_later(t, _wake, fut) if t is not None else None
        try:
            await fut
        finally:  # (a cancellation too: nothing stays registered)
            if state == POLL_READ:
                loop.remove_reader(fd)
            else:
                loop.remove_writer(fd)
            if timer is not None:
                timer.cancel()
        state = c.poll()


async def drive(c, reader=None, state=None):
    """Runs `c`'s operation (an _ambisql._Conn with one started) to its end; raises its
    error. Cancelled: the command is killed on the server and its answer read before the
    CancelledError goes on. `reader`: the connection's standing registration (None while
    it connects: a failover may reopen the socket under the same number); `state`: what
    c.poll() said last, if the caller polled."""
    if state is None:
        state = c.poll()
    if state == POLL_OK:
        return
    loop = get_running_loop()
    try:
        if reader is not None and state == POLL_READ and c.timeout() is None:
            state = await reader.wait(loop, c.fileno(), c)  # the usual case: one wait
            if state == POLL_OK:
                return
        await _pump(loop, c, state, reader)
    except CancelledError:
        if reader is not None:
            reader.detach()
        await _cancel(loop, c)
        raise
    except BaseException:
        if reader is not None:
            reader.detach()
        raise


async def _cancel(loop, c):
    # KILL QUERY through the core's canceller, then read to the end of the command. Its
    # outcome (interrupted, or completed before the KILL landed) does not matter to the
    # cancelled caller. Cancelled again meanwhile: the connection is closed instead.
    if not c.busy:
        return
    c.cancel()
    try:
        await _pump(loop, c, c.poll())
    except err.Error:
        return
    except CancelledError:
        c.close()
    except BaseException:
        c.close()
        raise
