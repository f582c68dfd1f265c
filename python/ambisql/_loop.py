"""Driving a connection's running operation from the asyncio loop in charge: every wait is a
loop.add_reader / add_writer on the socket the core names (no threads, no executor).
Cancellation (task.cancel(), asyncio.timeout, wait_for) kills the command on the server
and reads its answer, so the connection stays in step (or is closed)."""
from asyncio import CancelledError, get_running_loop

from . import err
from ._ambisql import POLL_OK, POLL_READ


def _wake(fut):
    if not fut.done():
        fut.set_result(None)


async def _pump(loop, c, state):
    # Waits on the socket (or until the operation's deadline, after which poll() reports
    # the timeout) and polls again, until the operation is done; raises its error.
    while state != POLL_OK:
        fd = c.fileno()
        fut = loop.create_future()
        if state == POLL_READ:
            loop.add_reader(fd, _wake, fut)
        else:
            loop.add_writer(fd, _wake, fut)
        t = c.timeout()
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


async def drive(c):
    """Runs `c`'s operation (an _ambisql._Conn with one started) to its end; raises its
    error. Cancelled: the command is killed on the server and its answer read before the
    CancelledError goes on."""
    state = c.poll()
    if state == POLL_OK:
        return
    loop = get_running_loop()
    try:
        await _pump(loop, c, state)
    except CancelledError:
        await _cancel(loop, c)
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
