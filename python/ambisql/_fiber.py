"""Fibers: synchronous code on a greenlet whose ambisql waits are the waits of an event loop
that is not asyncio's (Twisted's reactor, a trio task), through the one wait driver
(python/src/drive.cpp). A fiber class names its waiter (`_ambisql_wait(conn, fd, events,
timeout)`, which waits once: the driver polls, and applies the core's cancellation rule
when the wait raises) and its event (`_ambisql_event()`: (wait(timeout=None), wake), for
SQLAlchemy's pool and first-connect waits); registering the class
(connections._register_bridge) makes every ambisql connection used on one of its
greenlets wait that way.

A fiber runs jobs: started with one, it runs it, hands the outcome to the greenlet that
resumed it last (a Done), and waits for the next. Idle fibers are kept (a greenlet's
creation and end cost as much as a few dozen switches), a few per class."""
from greenlet import GreenletExit, getcurrent, greenlet

from . import connections, err

_KEEP = 64  # idle fibers kept per class


class Done:
    """A fiber's job is over: `value` is what it returned, or `error` what it raised."""

    __slots__ = ("value", "error")

    def __init__(self, value, error):
        self.value, self.error = value, error


class Fiber(greenlet):
    """`waiting`: the token of the wait it is suspended in (what may resume it), None while
    it runs or idles."""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls._idle = []

    def __init__(self):
        greenlet.__init__(self, self._main, getcurrent())
        self.waiting = None

    def _main(self, job):
        while job is not None:
            fn, args, kwargs = job
            try:
                done = Done(fn(*args, **kwargs), None)
            except GreenletExit:
                raise
            except BaseException as e:
                done = Done(None, e)
            fn = args = kwargs = None
            job = self.parent.switch(done)

    @classmethod
    def take(cls):
        """An idle fiber of this class, or a new one; it runs in the caller's context
        (context variables)."""
        g = cls._idle.pop() if cls._idle else cls()
        g.gr_context = getcurrent().gr_context
        return g

    def idle(self):
        """This fiber's job is over (it returned a Done): it waits for another."""
        idle = type(self)._idle
        if len(idle) < _KEEP:
            self.gr_context = None
            idle.append(self)
        else:  # (it ends)
            self.parent = getcurrent()
            self.switch(None)

    @staticmethod
    def _ambisql_wait(conn, fd, events, timeout):
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
