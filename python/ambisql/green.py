"""Implicit async: wait callbacks for gevent and eventlet. After patch_gevent() (or
patch_eventlet()), every blocking ambisql call waits through the green-thread hub, so it
suspends only its greenlet; ordinary synchronous code (SQLAlchemy, repositories) runs
unchanged and concurrently. A greenlet killed or timed out mid-query gets its command
killed on the server; the connection stays usable (or is closed), never out of step."""
from . import connections
from ._ambisql import POLL_OK, POLL_READ


def make_wait_callback(wait_read, wait_write, timeout_errors=()):
    """A psycopg2-style wait callback from a hub's wait primitives, which take
    (fileno, timeout=seconds or None) and raise one of `timeout_errors` on expiry."""

    def wait(conn):
        c = conn._c
        while True:
            state = c.poll()
            if state == POLL_OK:
                return
            t = c.timeout()
            try:
                if state == POLL_READ:
                    wait_read(c.fileno(), timeout=t)
                else:
                    wait_write(c.fileno(), timeout=t)
            except timeout_errors:
                pass  # the deadline passed: the next poll() reports the timeout

    return wait


def patch_gevent():
    """Waits through gevent's hub (gevent.socket.wait_read / wait_write)."""
    import gevent.socket

    connections.set_wait_callback(make_wait_callback(
        gevent.socket.wait_read, gevent.socket.wait_write, (gevent.socket.timeout,)))


def patch_eventlet():
    """Waits through eventlet's hub (eventlet.hubs.trampoline)."""
    from eventlet.hubs import trampoline

    class _Expired(Exception):
        pass

    def wait_read(fd, timeout=None):
        trampoline(fd, read=True, timeout=timeout, timeout_exc=_Expired)

    def wait_write(fd, timeout=None):
        trampoline(fd, write=True, timeout=timeout, timeout_exc=_Expired)

    connections.set_wait_callback(make_wait_callback(wait_read, wait_write, (_Expired,)))


def unpatch():
    """Blocking waits again."""
    connections.set_wait_callback(None)
