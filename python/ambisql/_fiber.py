"""Fibers: synchronous code on a greenlet whose ambisql waits are the waits of an event loop
that is not asyncio's (Twisted's reactor, a trio task), through the one wait driver
(python/src/drive.cpp). A fiber class names its waiter (`_ambisql_wait(conn, fd, events,
timeout)`, which waits once: the driver polls, and applies the core's cancellation rule
when the wait raises) and its sleep (`_ambisql_sleep(seconds)`, for SQLAlchemy's pool
waits); registering the class (connections._register_bridge) makes every ambisql
connection used on one of its greenlets wait that way."""
from greenlet import getcurrent, greenlet

from . import connections, err


class Fiber(greenlet):
    """Runs `run` (from switch()'s arguments on); `waiting` is the token of the wait it is
    suspended in (what may resume it), None while it runs."""

    def __init__(self, run, parent=None):
        greenlet.__init__(self, run, parent or getcurrent())
        self.gr_context = self.parent.gr_context  # the starter's context variables carry over
        self.waiting = None

    @staticmethod
    def _ambisql_wait(conn, fd, events, timeout):
        raise NotImplementedError

    @staticmethod
    def _ambisql_sleep(seconds):
        raise NotImplementedError


def current(cls, what):
    """The fiber of class `cls` running this code; else InterfaceError naming `what`."""
    g = getcurrent()
    if not isinstance(g, cls):
        raise err.InterfaceError(0, "%s outside a fiber (it is for code run by run_sync(), "
                                 "runInteraction() or runWithConnection())" % what)
    return g


def register(cls):
    connections._register_bridge(cls)
