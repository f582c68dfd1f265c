"""Implicit async: wait callbacks for gevent and eventlet. After patch_gevent() (or
patch_eventlet(); the first connection in a process whose socket module gevent or eventlet
has monkey-patched calls it itself, unless set_wait_callback() was called before), every
blocking ambisql call waits through the green-thread hub, so it
suspends only its greenlet; ordinary synchronous code (SQLAlchemy, repositories) runs
unchanged and concurrently. A greenlet killed or timed out mid-query gets its command
killed on the server; the connection stays usable (or is closed), never out of step."""
from . import connections
from ._ambisql import POLL_READ, GeventWait


def make_wait_callback(wait_read, wait_write, timeout_errors=()):
    """A waiter for set_wait_callback() from a hub's wait primitives, which take (fileno,
    timeout=seconds or None) and raise one of `timeout_errors` on expiry."""
    return _waiter(lambda conn, fd, t: wait_read(fd, timeout=t),
                   lambda conn, fd, t: wait_write(fd, timeout=t), timeout_errors)


def _waiter(read, write, timeout_errors, on_hub=None):
    # The driver's waiter protocol (python/src/drive.cpp): wait(conn, fd, events, timeout)
    # returns once fd is ready, the timeout passed or something woke it, and raises when the
    # greenlet is interrupted (killed, a Timeout). read/write(conn, fileno, timeout seconds
    # or None) wait through the hub.
    def wait(conn, fd, events, timeout):
        try:
            if events == POLL_READ:
                read(conn, fd, timeout)
            else:
                write(conn, fd, timeout)
        except timeout_errors:
            pass  # the deadline passed (or a close woke it): the next poll() says what now

    wait._ambisql_waiter = True
    if on_hub is not None:
        wait._ambisql_on_hub = on_hub
    return wait


def patch_gevent():
    """Waits through gevent's hub: a read on the established connection's socket waits on
    an io watcher the connection keeps for its socket and hub (GeventWait, in C, with a
    timer for the operation's deadline, if any); other waits (a connect's, a
    cancellation's side connection's, writes) through gevent.socket.wait."""
    import gevent.hub
    import gevent.socket
    from greenlet import getcurrent, greenlet as raw_greenlet

    switch_to = raw_greenlet.switch
    get_hub = gevent.hub.get_hub

    class _Expired(Exception):
        pass

    class _Closed(Exception):
        pass

    def waiting_for(events):
        # A wait other than the established socket's read (a connect's, a cancellation's
        # side connection's, a send's) that the connection's close from another greenlet
        # ends (conn._green_wake): the next poll() then reports the lost connection.
        def wait(conn, fd, t):
            hub = get_hub()
            io = hub.loop.io(fd, events)
            conn._green_wake = lambda: hub.cancel_wait(io, _Closed())  # (not once resumed)
            try:
                gevent.socket.wait(io, timeout=t)
            finally:
                conn._green_wake = None
                io.close()

        return wait

    other = _waiter(waiting_for(1), waiting_for(2), (gevent.socket.timeout, _Closed))

    def reader(conn, hub, fd):
        # The connection's standing watcher, made (again) for this hub and socket.
        w = conn._green_watch
        if w is not None:
            w.detach()
        w = conn._green_watch = _GeventReader(hub, fd)
        return w

    # The waiter in C (_ambisql.GeventWait): a read of the established socket on the
    # connection's standing watcher (reader() makes it when it is missing or was made for
    # another hub or socket), other() for every other wait, no Python frame per query.
    wait = GeventWait(get_hub, getcurrent, switch_to, _Expired, other, reader, lambda: getcurrent() is get_hub())
    connections.set_wait_callback(wait)


class _GeventReader:
    """A connection's io watcher for reading its socket on one gevent hub, started only
    while a read waits. Dropped before the socket can close or change; a greenlet waiting
    on it then (the connection closed or reopened from another greenlet) is woken, and its
    poll() reports what became of the connection."""

    __slots__ = ("hub", "fd", "io")

    def __init__(self, hub, fd):
        self.hub, self.fd = hub, fd
        self.io = hub.loop.io(fd, 1)

    def detach(self):
        io, self.io = self.io, None
        self.hub = None
        if io is None:
            return
        if io.active:
            # A greenlet waits on it: an event fed to the watcher switches to the greenlet
            # on the hub's next pass, unless the greenlet resumes otherwise first (killed,
            # timed out), whose io.stop() then drops the event: never a stray switch into
            # a greenlet gone on to wait elsewhere. The watcher is left to it (and to the
            # collector); its socket is closed meanwhile, nothing waits on it from the hub.
            io.feed(1, io.callback)  # (1: libev's EV_READ)
        else:
            io.close()


def patch_eventlet():
    """Waits through eventlet's hub. A read waits on a listener the connection keeps
    registered with the hub for its socket between queries (while the connection is
    established and quiet, its socket has nothing to read), so a query costs no hub.add /
    hub.remove and no epoll_ctl pair; other waits (writes, a connect, a cancellation's side
    connection) on listeners of their own, as eventlet.hubs.trampoline's."""
    from eventlet.hubs import get_hub
    from greenlet import getcurrent

    class _Expired(Exception):
        pass

    class _Closed(Exception):
        pass

    def wait_other(conn, fd, t, evtype):
        # A wait other than the established socket's read (a connect's, a cancellation's
        # side connection's, a send's), as trampoline() waits, that the connection's close
        # from another greenlet ends (conn._green_wake): the next poll() then reports the
        # lost connection. The wake-up reaches the greenlet only while it still waits here.
        hub = get_hub()
        cur = getcurrent()
        listener = hub.add(evtype, fd, cur.switch, cur.throw, None)
        waiting = [True]

        def wake():
            if waiting[0]:
                cur.throw(_Closed())

        conn._green_wake = lambda: hub.schedule_call_global(0, wake)
        timer = None if t is None else hub.schedule_call_global(t, cur.throw, _Expired)
        try:
            hub.switch()
        finally:
            waiting[0] = False
            conn._green_wake = None
            hub.remove(listener)
            if timer is not None:
                timer.cancel()

    def read(conn, fd, t):
        if fd != conn._sock_fd:  # a connect, or a cancellation's side connection
            wait_other(conn, fd, t, get_hub().READ)
            return
        hub = get_hub()
        w = conn._green_watch
        if w is None or w.hub is not hub or w.fd != fd or hub.listeners[hub.READ].get(fd) is not w.listener:
            if w is not None:
                w.detach()
            w = conn._green_watch = _EventletReader(hub, fd)
        listener = w.listener
        cur = getcurrent()
        # The hub calls listener.cb(fileno) when the socket turns readable, listener.tb(exc)
        # when eventlet learns the descriptor was closed: both into this greenlet while it
        # waits, as trampoline's listener would.
        listener.cb, listener.tb = cur.switch, cur.throw
        timer = None if t is None else hub.schedule_call_global(t, cur.throw, _Expired)
        try:
            hub.switch()
        finally:  # (a kill or an eventlet.Timeout too)
            listener.cb, listener.tb = w.idle, w.idle
            if timer is not None:
                timer.cancel()

    def write(conn, fd, t):
        wait_other(conn, fd, t, get_hub().WRITE)

    connections.set_wait_callback(_waiter(read, write, (_Expired, _Closed),
                                          on_hub=lambda: getcurrent() is get_hub().greenlet))


class _EventletReader:
    """A connection's standing read listener with one eventlet hub. Readable with nobody
    waiting (the server closing the socket between queries): it removes itself, so the
    hub does not spin on it. Dropped before the socket can close or change (the
    connection's _detach(): close, reconnect, any failed wait), waking a greenlet that
    waits on it."""

    __slots__ = ("hub", "fd", "listener")

    def __init__(self, hub, fd):
        self.hub, self.fd = hub, fd
        self.listener = hub.add(hub.READ, fd, self.idle, self.idle, None)

    def idle(self, *_):
        self.detach()

    def detach(self):
        hub, self.hub = self.hub, None
        if hub is None:
            return
        listener = self.listener
        if hub.listeners[hub.READ].get(self.fd) is listener:
            hub.remove(listener)
        switch = listener.cb
        if switch != self.idle:  # a greenlet waits on it (the connection closed or reopened
            # from another): it wakes, and its poll() reports what became of the connection;
            # unless it resumes otherwise first (killed, timed out), which resets listener.cb:
            # then no stray switch reaches it once it waits elsewhere
            def wake():
                if listener.cb is switch:
                    switch(self.fd)

            hub.schedule_call_global(0, wake)


def unpatch():
    """Blocking waits again."""
    connections.set_wait_callback(None)
