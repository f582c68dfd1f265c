"""Twisted: ambisql's connections driven by the reactor, with no threads.

    from ambisql.twisted import ConnectionPool      # was: from twisted.enterprise.adbapi
    dbpool = ConnectionPool("MySQLdb", host=..., user=..., passwd=..., db=..., cp_max=10)
    d = dbpool.runQuery("SELECT name FROM t WHERE id = %s", (1,))

ConnectionPool is twisted.enterprise.adbapi.ConnectionPool's drop-in (its arguments, its
run* methods, its Connection and Transaction, commit on return and rollback on exception),
but an interaction runs on a fiber (a greenlet) instead of a thread: its every database
wait is an addReader/addWriter on the reactor, so a thousand interactions at once are a
thousand fibers on one thread, and synchronous code called from an interaction (a
SQLAlchemy Session on a mysql+ambisql engine, its lazy loads included) waits the same way.

    conn = yield ambisql.twisted.connect(host=..., user=..., password=..., db=...)
    rows = yield conn.runQuery("SELECT 1")
    cur = conn.cursor(); yield cur.execute(...); row = yield cur.fetchone()

A Connection's operations return Deferreds (await them in `async def` code run by
ensureDeferred) and run one after another in the order they were asked for. Cancelling
the Deferred of a running query kills it on the server (KILL QUERY) and reads its answer:
the connection stays in step, and the next operation runs once that is over.

The bridge: run_sync(fn, *args) runs synchronous code on a fiber and returns a Deferred of
its result; inside it, await_(d) waits for a Deferred (or a coroutine) and returns its
result."""
import os
from collections import deque

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.python import failure, log

from . import _fiber, connections, cursors, err
from ._ambisql import POLL_READ

__all__ = ["connect", "Connection", "Cursor", "ConnectionPool", "run_sync", "await_"]


def _default_reactor(reactor):
    if reactor is None:
        from twisted.internet import reactor
    return reactor


class _Watch:
    """One wait of a fiber on a descriptor, registered with the reactor (an IReadDescriptor
    and IWriteDescriptor): readiness, the reactor's connectionLost, or the timeout resumes
    the fiber, only while it still waits on this watch. The reactor watches a duplicate of
    the descriptor (see _Reader): a close from elsewhere while it waits closes the
    original only."""

    __slots__ = ("fd", "fiber", "reactor", "events")

    def __init__(self, fd, fiber, reactor, events):
        self.fd, self.fiber, self.reactor, self.events = os.dup(fd), fiber, reactor, events
        if events == POLL_READ:
            reactor.addReader(self)
        else:
            reactor.addWriter(self)

    def fileno(self):
        return self.fd

    def logPrefix(self):
        return "ambisql"

    def wake(self, *_):
        g = self.fiber
        if g is not None and g.waiting is self:
            _resume(g)

    doRead = doWrite = wake

    def connectionLost(self, reason):
        self.events = 0  # (the reactor dropped it)
        self.wake()

    def drop(self):
        """Unregisters (once) and closes the duplicate."""
        events, self.events = self.events, 0
        if events == POLL_READ:
            self.reactor.removeReader(self)
        elif events:
            self.reactor.removeWriter(self)
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class _Reader:
    """A connection's standing registration with one reactor for its established socket:
    read interest kept between operations (the socket is quiet between them), so a query
    costs no addReader/removeReader pair; write interest added while a send waits (one
    object per descriptor: the epoll reactor keeps one). Readable with nobody waiting (the
    server closing the socket): it removes itself. Dropped when the socket closes or
    changes (the connection's close, a reconnect: connections' _detach(); a failure:
    drive.cpp's forget_socket()), waking a fiber waiting on it.

    The reactor watches a duplicate of the socket's descriptor, which only this object
    closes: the core closes its own when the connection breaks, inside poll(), and a
    reactor left holding a closed (or reused) number unregisters the wrong one, or fails
    to, and loses track of its own tables."""

    __slots__ = ("sock", "fd", "reactor", "fiber", "registered", "writing")

    def __init__(self, reactor, sock):
        self.reactor, self.sock, self.fiber, self.writing = reactor, sock, None, False
        self.fd = os.dup(sock)
        reactor.addReader(self)
        self.registered = True

    def fileno(self):
        return self.fd

    def logPrefix(self):
        return "ambisql"

    def doRead(self):
        g = self.fiber
        if g is None:
            self.detach()
        elif g.waiting is self:
            _resume(g)

    def doWrite(self):
        g = self.fiber
        if g is not None and g.waiting is self:
            _resume(g)

    def want_write(self, on):
        if on != self.writing and self.registered:
            self.writing = on
            if on:
                self.reactor.addWriter(self)
            else:
                self.reactor.removeWriter(self)

    def connectionLost(self, reason):
        self.registered = self.writing = False  # (the reactor dropped it)
        self.detach()

    def detach(self):
        if self.registered:
            self.want_write(False)
            self.registered = False
            self.reactor.removeReader(self)
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
        g, self.fiber = self.fiber, None
        if g is not None and g.waiting is self:
            self.reactor.callLater(0, _wake_if, g, self)


def _wake_if(g, token):
    if g.waiting is token:
        _resume(g)


class _Fiber(_fiber.Fiber):
    """A fiber whose waits are the reactor's. `ended(result)` runs (on the greenlet that
    resumed it last: the reactor's) when its job is over; `result` is the job's return
    value or a Failure."""

    reactor = ended = None
    job = None  # (a Connection's fiber: the operation it runs)

    @staticmethod
    def _ambisql_wait(conn, fd, events, timeout):
        # One wait (the driver polls): on the connection's standing _Reader for a read of
        # its established socket, else on a _Watch of its own; the timeout is a callLater.
        # Each resumes the fiber only while it still waits on it (g.waiting).
        g = _fiber.getcurrent()
        reactor = g.reactor
        if fd == conn._sock_fd:  # the established socket: its standing registration
            w = conn._green_watch
            if w is None or w.__class__ is not _Reader or w.reactor is not reactor or w.sock != fd or not w.registered:
                if w is not None:
                    w.detach()
                w = conn._green_watch = _Reader(reactor, fd)
            w.fiber = g
            if events != POLL_READ:
                w.want_write(True)
        else:  # a connect, a cancellation's side connection
            w = _Watch(fd, g, reactor, events)
            conn._green_wake = lambda: reactor.callLater(0, _wake_if, g, w)
        g.waiting = w
        timer = None if timeout is None else reactor.callLater(timeout, _wake_if, g, w)
        try:
            g.parent.switch()
        finally:
            g.waiting = None
            if timer is not None and timer.active():
                timer.cancel()
            if w.__class__ is _Reader:
                if w.fiber is g:
                    w.fiber = None
                if events != POLL_READ:
                    w.want_write(False)
            else:
                conn._green_wake = None
                w.drop()

    @staticmethod
    def _ambisql_event():
        d = defer.Deferred()

        def wake():
            if not d.called:
                d.callback(None)

        def wait(timeout=None):
            timer = None
            if timeout is not None:
                timer = _fiber.current(_Fiber, "wait").reactor.callLater(timeout, wake)
            try:
                await_(d)
            finally:
                if timer is not None and timer.active():
                    timer.cancel()

        return wait, wake


_fiber.register(_Fiber)


def _resume(g):
    _after(g, _switch(g))


def _prepare(reactor, ended, job=None):
    # A fiber for a job (started by _begin()).
    g = _Fiber.take()
    g.reactor, g.ended, g.job = reactor, ended, job
    return g


def _begin(g, fn, args, kwargs):
    _after(g, _switch(g, (fn, args, kwargs)))


def _throw(g, exc):
    g.parent = _fiber.getcurrent()
    try:
        r = g.throw(exc)
    except BaseException:
        r = failure.Failure()
    _after(g, r)


def _switch(g, *args, **kwargs):
    # The fiber's next wait switches back to whoever resumed it (the reactor's greenlet,
    # or the code that started it); so does its end.
    g.parent = _fiber.getcurrent()
    try:
        return g.switch(*args, **kwargs)
    except BaseException:
        return failure.Failure()


def _after(g, r):
    if r.__class__ is _fiber.Done:  # its job is over: the fiber idles, its outcome goes on
        ended = g.ended
        g.reactor = g.ended = g.job = None
        g.idle()
        e = r.error
        ended(r.value if e is None else failure.Failure(e, type(e), e.__traceback__))
    elif g.dead:  # (killed)
        ended, g.ended = g.ended, None
        if ended is not None:
            ended(r if isinstance(r, failure.Failure) else failure.Failure(err.InterfaceError(0, "fiber ended")))


def _spawn(reactor, fn, args, kwargs, ended):
    g = _prepare(reactor, ended)
    _begin(g, fn, args, kwargs)
    return g


def _firer(d):
    def ended(r):
        if d.called:  # cancelled meanwhile: the outcome is nobody's (a CancelledError)
            return
        if isinstance(r, failure.Failure):
            d.errback(r)
        else:
            d.callback(r)

    return ended


def _interrupt(g):
    # Cancels what fiber `g` waits for: the wait raises CancelledError into the one wait
    # driver, which kills the command on the server and reads its answer (or closes the
    # connection when that does not end: the core's rule), then lets it go on.
    if g is not None and not g.dead and g.waiting is not None:
        _throw(g, defer.CancelledError())


def run_sync(fn, *args, reactor=None, **kwargs):
    """A Deferred of fn(*args, **kwargs), run now on a fiber whose waits (ambisql's, and
    await_()'s) are the reactor's. Cancelling the Deferred cancels the wait inside."""
    box = []
    d = defer.Deferred(lambda _: _interrupt(box[0] if box else None))
    box.append(_spawn(_default_reactor(reactor), fn, args, kwargs, _firer(d)))
    return d


def await_(awaitable):  # (also _Fiber._ambisql_await: ambisql.aio.await_ on a fiber)
    """From synchronous code on a fiber (run_sync(), runInteraction()): waits for a
    Deferred, or a coroutine run by ensureDeferred, and returns its result (or raises its
    failure's exception)."""
    g = _fiber.getcurrent()
    if not isinstance(g, _Fiber):
        if hasattr(awaitable, "close") and hasattr(awaitable, "send"):
            awaitable.close()
        raise err.InterfaceError(0, "await_() outside an ambisql.twisted fiber")
    d = defer.ensureDeferred(awaitable)
    box = []
    token = object()

    def fired(r):
        box.append(r)
        if g.waiting is token:
            _resume(g)

    d.addBoth(fired)
    if not box:
        g.waiting = token
        try:
            g.parent.switch()
        except BaseException:  # cancelled: so is what it waited for
            if not box:
                d.cancel()
            raise
        finally:
            g.waiting = None
    r = box[0]
    if isinstance(r, failure.Failure):
        r.raiseException()
    return r


_Fiber._ambisql_await = staticmethod(await_)


def _committed(conn, fn, *args, **kwargs):
    # adbapi's rule for an interaction: fn's result once conn.commit() is done; on an
    # exception conn.rollback() (its own failure logged: the first exception goes on).
    try:
        result = fn(*args, **kwargs)
        conn.commit()
        return result
    except BaseException:
        try:
            conn.rollback()
        except BaseException:
            log.err(None, "Rollback failed")
        raise


# ---- connections whose operations return Deferreds

def connect(*args, reactor=None, **kwargs):
    """A Deferred of a Connection: ambisql.connect()'s arguments (host, port, user, password,
    db, unix_socket, charset, ssl, url, ...), and the reactor (the global one by default)."""
    reactor = _default_reactor(reactor)
    kwargs.pop("async_", None)
    return run_sync(lambda: Connection(connections.Connection(*args, **kwargs), reactor), reactor=reactor)


class Connection(connections.ConnectionView):
    """A connection driven by the reactor (connect() makes one). Operations run one after
    another on a fiber each, in the order they were asked for."""

    def __init__(self, sync, reactor=None):
        self._sync = sync
        self._reactor = _default_reactor(reactor)
        self._jobs = deque()
        self._fiber = None

    def _call(self, fn, *args, **kwargs):
        job = [fn, args, kwargs, None]

        def cancel(d):
            if job in self._jobs:  # not started: it never will
                self._jobs.remove(job)
            elif self._fiber is not None and self._fiber.job is job:
                _interrupt(self._fiber)

        d = job[3] = defer.Deferred(cancel)
        self._jobs.append(job)
        if self._fiber is None:
            self._next()
        return d

    def _next(self):
        while self._fiber is None and self._jobs:
            job = self._jobs.popleft()
            fn, args, kwargs, d = job
            fire = _firer(d)

            def ended(r, fire=fire):
                self._fiber = None
                self._next()
                fire(r)

            g = self._fiber = _prepare(self._reactor, ended, job)
            _begin(g, fn, args, kwargs)

    # ---- the operations
    def runInteraction(self, interaction, *args, **kwargs):
        """interaction(cursor, *args, **kwargs) on a fiber; committed when it returns,
        rolled back when it raises (as adbapi's)."""
        return self._call(self._interaction, interaction, args, kwargs)

    def _interaction(self, interaction, args, kwargs):
        cur = self._sync.cursor()

        def run():
            result = interaction(cur, *args, **kwargs)
            cur.close()
            return result

        return _committed(self._sync, run)

    def runQuery(self, query, args=None):
        """A Deferred of every row of the query's result."""
        return self._call(self._query, query, args)

    def _query(self, query, args):
        with self._sync.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall()

    def runOperation(self, query, args=None):
        """A Deferred of the number of rows the statement affected."""
        return self._call(self._operation, query, args)

    def _operation(self, query, args):
        with self._sync.cursor() as cur:
            return cur.execute(query, args)

    def cursor(self, cursorclass=None):
        """A cursor whose methods return Deferreds."""
        return Cursor(self, self._sync.cursor(cursorclass))

    def commit(self):
        return self._call(self._sync.commit)

    def rollback(self):
        return self._call(self._sync.rollback)

    def begin(self):
        return self._call(self._sync.begin)

    def ping(self, reconnect=False):
        return self._call(self._sync.ping, reconnect)

    def autocommit(self, on):
        return self._call(self._sync.autocommit, on)

    def select_db(self, db):
        return self._call(self._sync.select_db, db)

    def close(self):
        """Closes the connection now. An operation still running ends with an error
        (OperationalError: lost connection); those not started fail with InterfaceError."""
        jobs, self._jobs = self._jobs, deque()
        if self._sync._c is not None:
            self._sync.close()
        for job in jobs:
            job[3].errback(err.InterfaceError(0, "the connection was closed"))


class Cursor(cursors.CursorView):
    """A cursor whose methods that talk to the server return Deferreds; they run in the
    connection's order."""

    def execute(self, query, args=None):
        return self.connection._call(self._cur.execute, query, args)

    def executemany(self, query, args):
        return self.connection._call(self._cur.executemany, query, args)

    def callproc(self, procname, args=()):
        return self.connection._call(self._cur.callproc, procname, args)

    def nextset(self):
        return self.connection._call(self._cur.nextset)

    def fetchone(self):
        return self.connection._call(self._cur.fetchone)

    def fetchmany(self, size=None):
        return self.connection._call(self._cur.fetchmany, size)

    def fetchall(self):
        return self.connection._call(self._cur.fetchall)

    def close(self):
        return self.connection._call(self._cur.close)


# ---- adbapi's ConnectionPool, on fibers

_MODULES = ("ambisql", "MySQLdb", "pymysql", "MySQLdb.connections")


class ConnectionPool:
    """twisted.enterprise.adbapi.ConnectionPool's drop-in, on fibers instead of threads.

    ConnectionPool(dbapiName, *connargs, **connkw): `dbapiName` is "ambisql", or the module
    the code moves from ("MySQLdb", "pymysql": ambisql takes both's connect() arguments);
    cp_min, cp_max (at most that many interactions run at once, each holding a connection:
    the rest wait their turn, in order), cp_noisy, cp_openfun, cp_reconnect, cp_good_sql,
    cp_reactor as adbapi's (cp_min bounds nothing here: connections open as interactions
    need them, as adbapi's threads open theirs; cp_name would name adbapi's thread pool,
    and there is none). runInteraction(), runWithConnection(), runQuery(),
    runOperation(), close() as adbapi's, with its Connection and Transaction classes
    (connectionFactory, transactionFactory). A connection found closed when its
    interaction ends is dropped, not handed to the next."""

    CP_ARGS = "min max name noisy openfun reconnect good_sql".split()

    noisy = False
    min = 3
    max = 5
    name = None
    openfun = None
    reconnect = False
    good_sql = "select 1"

    running = False
    connectionFactory = adbapi.Connection
    transactionFactory = adbapi.Transaction
    shutdownID = None

    def __init__(self, dbapiName="ambisql", *connargs, **connkw):
        if dbapiName not in _MODULES:
            raise ValueError("ambisql.twisted.ConnectionPool speaks MySQL/MariaDB only: dbapiName "
                             "is one of %s, not %r" % (", ".join(_MODULES), dbapiName))
        import ambisql

        self.dbapiName = dbapiName
        self.dbapi = ambisql
        self._reactor = _default_reactor(connkw.pop("cp_reactor", None))
        self.connargs = connargs
        self.connkw = connkw
        for arg in self.CP_ARGS:
            key = "cp_" + arg
            if key in connkw:
                setattr(self, arg, connkw.pop(key))
        self.min = min(self.min, self.max)
        self.max = max(self.min, self.max)
        self.connections = {}  # every open connection, by id()
        self._idle = []  # those no interaction holds (the last returned on top)
        self._held = {}  # fiber -> its connection
        self._running = 0  # interactions under way (at most max)
        self._jobs = deque()  # those waiting for their turn
        self._closed = False
        self.startID = self._reactor.callWhenRunning(self._start)

    def _start(self):
        self.startID = None
        return self.start()

    def start(self):
        """Starts the pool (the reactor does it when it runs)."""
        if not self.running:
            self.shutdownID = self._reactor.addSystemEventTrigger("during", "shutdown", self.finalClose)
            self.running = True

    # ---- what runs interactions
    def runInteraction(self, interaction, *args, **kw):
        """A Deferred of interaction(Transaction, *args, **kw), run on a fiber with a
        pooled connection: committed when it returns, rolled back when it raises."""
        return self._submit(self._runInteraction, interaction, args, kw)

    def runWithConnection(self, func, *args, **kw):
        """A Deferred of func(Connection, *args, **kw), run on a fiber: committed when it
        returns, rolled back when it raises."""
        return self._submit(self._runWithConnection, func, args, kw)

    def runQuery(self, *args, **kw):
        """A Deferred of cursor.execute(*args, **kw)'s cursor.fetchall()."""
        return self.runInteraction(self._runQuery, *args, **kw)

    def runOperation(self, *args, **kw):
        """A Deferred of None once cursor.execute(*args, **kw) is committed."""
        return self.runInteraction(self._runOperation, *args, **kw)

    def _runInteraction(self, interaction, *args, **kw):
        conn = self.connectionFactory(self)
        trans = self.transactionFactory(self, conn)

        def run():
            result = interaction(trans, *args, **kw)
            trans.close()
            return result

        return _committed(conn, run)

    def _runWithConnection(self, func, *args, **kw):
        conn = self.connectionFactory(self)
        return _committed(conn, func, conn, *args, **kw)

    def _runQuery(self, trans, *args, **kw):
        self._execute_and_commit(trans, args, kw)
        return trans.fetchall()

    def _runOperation(self, trans, *args, **kw):
        self._execute_and_commit(trans, args, kw)

    def _execute_and_commit(self, trans, args, kw):
        # The statement and the commit that _runInteraction() sends after it, together
        # (one round trip: the cursor decides when that is safe); the commit after it
        # then finds no transaction open and costs nothing. Any other transaction or
        # cursor (factories of one's own), or other arguments: as adbapi does.
        cur = getattr(trans, "_cursor", None)
        if kw or not 1 <= len(args) <= 2 or not isinstance(cur, cursors.Cursor):
            trans.execute(*args, **kw)
        else:
            cur._execute_and_commit(*args)

    def _submit(self, method, fn, args, kw):
        if self._closed:
            return defer.fail(err.InterfaceError(0, "the connection pool is closed"))
        job = [method, fn, args, kw, None, None]  # ..., Deferred, fiber

        def cancel(d):
            if job in self._jobs:  # not started: it never will
                self._jobs.remove(job)
            else:
                _interrupt(job[5])

        job[4] = defer.Deferred(cancel)
        if self._running < self.max:
            self._run(job)
        else:
            self._jobs.append(job)
        return job[4]

    def _run(self, job):
        method, fn, args, kw, d, _ = job
        self._running += 1
        fire = _firer(d)

        def ended(r):
            self._running -= 1
            while self._jobs and self._running < self.max:
                self._run(self._jobs.popleft())
            fire(r)

        job[5] = g = _prepare(self._reactor, ended)
        _begin(g, self._interact, (method, fn, args, kw), {})

    def _interact(self, method, fn, args, kw):
        try:
            return method(fn, *args, **kw)
        finally:
            self._release(_fiber.getcurrent())

    def _release(self, g):
        conn = self._held.pop(g, None)
        if conn is None:
            return
        if self._closed or not conn.open:
            self._drop(conn)
        else:
            self._idle.append(conn)

    def _drop(self, conn):
        self.connections.pop(id(conn), None)
        self._close(conn)

    # ---- what adbapi's Connection calls
    def connect(self):
        """The connection of the interaction running this code: the one it holds, else an
        idle one, else a new one (waits are the reactor's)."""
        g = _fiber.current(_Fiber, "ConnectionPool.connect()")
        conn = self._held.get(g)
        if conn is not None:
            return conn
        while self._idle:
            conn = self._idle.pop()
            if conn.open:
                break
            self._drop(conn)
            conn = None
        if conn is None:
            if self.noisy:
                log.msg("ambisql.twisted connecting")
            conn = self.dbapi.connect(*self.connargs, **self.connkw)
            self.connections[id(conn)] = conn
            if self.openfun is not None:
                try:
                    self.openfun(conn)
                except BaseException:
                    self._drop(conn)
                    raise
        self._held[g] = conn
        return conn

    def disconnect(self, conn):
        """Closes the connection the running interaction holds (adbapi's Connection does
        it to reconnect)."""
        g = _fiber.getcurrent()
        if conn is not self._held.get(g):
            raise Exception("wrong connection for thread")
        del self._held[g]
        self._drop(conn)

    def _close(self, conn):
        if self.noisy:
            log.msg("ambisql.twisted closing")
        try:
            if conn.open:
                conn.close()
        except BaseException:
            log.err(None, "Connection close failed")

    def close(self):
        """Closes the pool's connections and the pool."""
        if self.shutdownID:
            self._reactor.removeSystemEventTrigger(self.shutdownID)
            self.shutdownID = None
        if self.startID:
            self._reactor.removeSystemEventTrigger(self.startID)
            self.startID = None
        self.finalClose()

    def finalClose(self):
        """Closes the idle connections now and the others as their interactions end;
        interactions not started fail (InterfaceError)."""
        self.shutdownID = None
        self.running = False
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._drop(conn)
        jobs, self._jobs = self._jobs, deque()
        for job in jobs:
            job[4].errback(err.InterfaceError(0, "the connection pool is closed"))


# adbapi's names, so that `from ambisql.twisted import ...` replaces its import
Transaction = adbapi.Transaction
ConnectionLost = adbapi.ConnectionLost
