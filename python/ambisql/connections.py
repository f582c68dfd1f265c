"""The PEP 249 connection: MySQLdb's and PyMySQL's keyword arguments, blocking calls that
release the GIL, a wait callback for green threads, and psycopg2's async mode."""
import os
from typing import Any, Optional
import warnings
import weakref

from . import _tls, err
from ._ambisql import POLL_OK, POLL_READ, POLL_WRITE, _Conn, _set_wait, _wait as _drive_wait
from ._loop import _Reader, drive as _drive
from .constants import CLIENT, SERVER_STATUS
from .cursors import Cursor

try:
    from greenlet import getcurrent as _getcurrent
except ImportError:  # no greenlet: no bridge to an event loop
    def _getcurrent():
        return None

# Greenlet classes whose parent is an asyncio task that awaits what they switch to it
# (ambisql.aio.run_sync's, SQLAlchemy's greenlet_spawn's); registered by those modules.
_bridges = ()


def _register_bridge(cls):
    global _bridges
    if cls not in _bridges:
        _bridges = _bridges + (cls,)
        _share_wait_state()


# set_wait_callback(): when set, every operation that would block calls it instead.
_wait_callback = None
_wait_callback_chosen = False  # set_wait_callback() was called: no automatic choice


def set_wait_callback(fn):
    """psycopg2's contract (extensions.set_wait_callback): fn(conn) loops conn.poll()
    and waits on conn.fileno() until POLL_OK. Or a waiter (ambisql.green's,
    make_wait_callback()'s; its _ambisql_waiter is True): fn(conn, fd, events, timeout)
    waits once, and the driver polls. None restores blocking waits (and, called before
    the first connect, keeps them in a monkey-patched process)."""
    global _wait_callback, _wait_callback_chosen
    _wait_callback = fn
    _wait_callback_chosen = True
    _share_wait_state()


def _bridge_wait(conn):
    # Synchronous code on a greenlet whose parent awaits for it on an asyncio loop
    # (ambisql.aio.run_sync, SQLAlchemy's async adaptation): the loop waits.
    _getcurrent().parent.switch(_drive(conn._c, conn._reader, standing=conn._sock_fd >= 0))


def _share_wait_state():
    # The one wait driver (C, python/src/drive.cpp) decides by these: Connection._wait()
    # and the buffered cursor's execute both go through it.
    _set_wait(_wait_callback, _bridges, _getcurrent, _bridge_wait, err.Error)


def get_wait_callback():
    return _wait_callback


_share_wait_state()


def _choose_wait_callback():
    # A process whose socket module gevent or eventlet has monkey-patched expects every
    # socket wait to go through its hub, as PyMySQL's do; without a callback ambisql's
    # calls would block the hub and serialize every greenlet. The first connection
    # installs the hub's callback then, unless set_wait_callback() chose otherwise.
    import sys
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        from . import green
        green.patch_gevent()
        return
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("socket"):
        from . import green
        green.patch_eventlet()


def _loop_connect_kwargs(kwargs):
    """connect()'s keyword arguments for a connection an event loop drives (ambisql.aio's,
    ambisql.trio's): connected by the awaited connect() itself, autocommit off unless asked."""
    if kwargs.pop("defer_connect", False):
        raise TypeError("defer_connect: an event loop's connect() connects when it is awaited")
    kwargs.pop("async_", None)
    kwargs.pop("loop", None)
    kwargs.setdefault("autocommit", False)
    return kwargs


class Connection(err.ErrorClasses):
    """ambisql.connect(...) makes one. Not to be shared between threads at once
    (threadsafety 1); a second operation started while one runs (two greenlets, two
    threads) fails with ProgrammingError (2014) and leaves the first alone."""

    def __init__(self, host=None, user=None, password="", database=None, port=0,
                 unix_socket=None, charset=None, collation=None, sql_mode=None,
                 read_default_file=None, read_default_group=None, conv=None, use_unicode=True, client_flag=0,
                 cursorclass=Cursor, init_command=None, connect_timeout=None, ssl=None,
                 ssl_mode=None, ssl_ca=None, ssl_cert=None, ssl_key=None, ssl_disabled=None,
                 read_timeout=None, write_timeout=None, cancel_timeout=None, autocommit=False, local_infile=False,
                 db=None, passwd=None, compress=None, url=None, async_=False,
                 get_server_public_key=False, binary_prefix=False, program_name=None,
                 server_public_key=None, defer_connect=False, hosts=None, host_mode=None,
                 galera_check=None, wsrep_sync_wait=None, host_backoff=None, bind_address=None,
                 keepalive=None, keepalive_idle=None, keepalive_interval=None, keepalive_count=None, **kwargs):
        if kwargs.pop("async", False):
            async_ = True
        if kwargs:
            raise TypeError("connect() got unexpected keyword arguments: %s" % ", ".join(sorted(kwargs)))
        if conv is not None:  # (values would come back otherwise than the caller asked)
            raise err.NotSupportedError(0, "conv (custom converters) is not supported")
        if db is not None and database is None:
            database = db
        if passwd is not None and not password:
            password = passwd
        # The settings given, by connect()'s names; those not given are left out (unset is
        # not false), so that the option file's and the URL's stand. One builder, the
        # core's (config_builder, through python/src/options.cpp), decides from them, the
        # URL and the option file: later sources win (defaults, option file, URL, these),
        # and TLS is never weaker than any of them asked.
        if hosts is not None and not isinstance(hosts, str):  # "h1:3306,h2" or (host, port) pairs
            hosts = ",".join(h if isinstance(h, str) else "%s:%d" % (h[0], int(h[1])) for h in hosts)
        given = {
            "host": host, "port": port or None, "hosts": hosts, "user": user, "password": password or None,
            "database": database, "unix_socket": unix_socket, "charset": charset, "bind_address": bind_address,
            "connect_timeout": connect_timeout, "read_timeout": read_timeout, "write_timeout": write_timeout,
            "cancel_timeout": cancel_timeout, "compress": compress, "host_mode": host_mode,
            "galera_check": galera_check, "wsrep_sync_wait": wsrep_sync_wait, "host_backoff": host_backoff,
            "keepalive": keepalive, "keepalive_idle": keepalive_idle, "keepalive_interval": keepalive_interval,
            "keepalive_count": keepalive_count,
            # client_flag's bits turn these on; else the URL's settings stand (default off)
            "found_rows": True if client_flag & CLIENT.FOUND_ROWS else None,
            "multi_statements": True if client_flag & CLIENT.MULTI_STATEMENTS else None,
            "get_server_public_key": True if get_server_public_key else None,
            # PyMySQL's: the server's RSA key (PEM, bytes or str) for caching_sha2_password
            # without TLS; the program_name connection attribute
            "server_public_key": server_public_key.decode("ascii")
            if isinstance(server_public_key, (bytes, bytearray)) else server_public_key,
            "program_name": program_name,
            "url": url,
        }
        opts = {k: v for k, v in given.items() if v is not None}
        if read_default_file or read_default_group:  # an option file's group ([client] unless named)
            opts["option_file"] = os.path.expanduser(read_default_file or "/etc/my.cnf")
            opts["option_group"] = read_default_group or "client"
        opts["tls"] = _tls.settings(ssl, ssl_mode, ssl_ca, ssl_cert, ssl_key, ssl_disabled)
        if isinstance(local_infile, (list, tuple)):
            opts["local_infile_allow"] = [str(p) for p in local_infile]
        opts["use_unicode"] = bool(use_unicode)  # False: text values as bytes, as MySQLdb's and PyMySQL's
        self._opts = opts
        self._async = bool(async_)
        self._init_command = init_command
        self._sql_mode = sql_mode
        self._collation = collation
        self._autocommit = autocommit
        self._encoding = "utf-8"
        self.cursorclass = cursorclass
        self.encoders = None
        self._reader = None  # the asyncio loop's standing registration, once connected
        self._green_watch = None  # green.py's standing read watcher for its hub, if any
        self._green_wake = None  # green.py: ends a greenlet's other wait (a send's, a KILL's)
        self._unbuffered = None  # weakref to the SSCursor whose result is being read
        self._sock_fd = -1  # the established connection's socket (not a connect's attempts
        # or a cancellation's side connection): what a standing watch may be kept for
        # (binary_prefix, PyMySQL's _binary before bytes, is what happens anyway: bytes go
        # out as X'..' literals, binary strings.)
        if not _wait_callback_chosen:
            _choose_wait_callback()
        self._c = None
        if not defer_connect:  # (PyMySQL's: connect() later)
            self.connect()

    def connect(self):
        """Connects: with defer_connect=True the first connect is this call's; on a
        connection that is open, a new one replaces it."""
        if self._async:  # the caller's poll() drives it; async connections keep the server's autocommit
            self._detach()
            if self._c is not None:
                self._c.close()
            self._c = _Conn()
            self._c.start_connect(self._opts)
            return
        self._reconnect()

    def _after_connect(self):
        # The session as asked for: collation, sql_mode, init_command, autocommit (only
        # when the server's differs).
        if self._collation is not None:  # (the core checks the names)
            self.set_character_set(self.character_set_name(), self._collation)
        if self._sql_mode is not None:
            self._run("SET sql_mode=%s", (self._sql_mode,))
        if self._init_command is not None:
            self._run(self._init_command)
        if self._autocommit is not None:
            self.autocommit(self._autocommit)

    # ---- waiting
    def _wait(self):
        # The started operation to its end through the waiter in force (the one driver,
        # drive.cpp); async connections are driven by their caller's poll().
        if not self._async:
            _drive_wait(self)

    def _run(self, sql, args=None):
        c = self._ready()
        c.start_query(sql, args)
        self._wait()
        return c.results()

    def _checked(self):
        c = self._c
        if c is None:
            raise err.InterfaceError(0, "the connection is closed")
        return c

    def _ready(self, cursor=None):
        """The _Conn, ready for a command: an unbuffered result another cursor left
        unread is read to its end and dropped, with a warning, as PyMySQL does."""
        c = self._checked()
        ref = self._unbuffered
        if ref is not None:
            cur = ref()
            if cur is not cursor:
                self._unbuffered = None
                if cur is not None and (c.rows_pending or c.more_results):
                    warnings.warn("Previous unbuffered result was left incomplete", UserWarning, stacklevel=3)
                    cur._drain()
        return c

    def _streaming(self, cursor):
        self._unbuffered = weakref.ref(cursor)

    def __reduce_ex__(self, protocol):
        # A live session: a copy would share its socket (and pickling cannot carry it).
        raise TypeError("cannot pickle or copy %r object" % type(self).__name__)

    # ---- PEP 249
    def close(self) -> None:
        c = self._c
        if c is None:
            raise err.Error("Already closed")
        self._c = None
        self._detach()
        c.close()

    def _detach(self):
        # Drops what watches the socket (asyncio's and green hubs' standing
        # registrations) before the socket can close or change.
        r = getattr(self, "_reader", None)
        if r is not None:
            self._reader = None
            r.detach()
        w = getattr(self, "_green_watch", None)
        if w is not None:
            self._green_watch = None
            w.detach()
        wake = getattr(self, "_green_wake", None)
        if wake is not None:  # a greenlet waits on another of its sockets, or to send
            self._green_wake = None
            wake()
        self._sock_fd = -1

    @property
    def open(self):
        return self._c is not None and self._c.is_open

    def __del__(self):
        c = getattr(self, "_c", None)
        if c is not None:
            self._detach()
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # Closes, committing nothing (uncommitted work is rolled back by the server), as
        # PyMySQL 1.x and mysqlclient 2.x do.
        if self._c is not None:
            self.close()

    def commit(self) -> None:
        """Commits the transaction. With none open (the server reports none, and no
        statement failed since it last did: the core's in_transaction) there is nothing
        to commit, and no round trip."""
        if self._ready().in_transaction:
            self._run("COMMIT")

    def rollback(self):
        """Rolls the transaction back; with none open (see commit()), no round trip."""
        if self._ready().in_transaction:
            self._run("ROLLBACK")

    def begin(self):
        self._run("BEGIN")

    def cursor(self, cursorclass: Any = None, prepared: Optional[bool] = None) -> Cursor:
        cls = cursorclass or self.cursorclass
        self._checked()
        return cls(self, prepared=prepared) if prepared is not None else cls(self)

    def ping(self, reconnect=False):
        c = self._c
        if c is None or not c.is_open:
            if not reconnect:
                raise err.InterfaceError(0, "the connection is closed")
            self._reconnect()
            return True
        try:
            self._ready()
            c.start_ping()
            self._wait()
        except err.OperationalError:
            if not reconnect:
                raise
            self._reconnect()
        return True

    def _reconnect(self):
        self._detach()
        if self._c is not None:
            self._c.close()
        self._c = _Conn()
        self._c.start_connect(self._opts)
        self._reader = _Reader()  # (a close from elsewhere meanwhile ends the connect's wait)
        self._wait()
        self._sock_fd = self._c.fileno()
        self._after_connect()

    def autocommit(self, on):
        on = bool(on)
        self._autocommit = on
        if self.get_autocommit() != on:
            self._run("SET autocommit=%d" % int(on))

    def get_autocommit(self):
        return bool(self._checked().server_status & SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT)

    def select_db(self, db):
        c = self._ready()
        c.start_select_db(db)
        self._wait()

    def reset_connection(self):
        c = self._ready()
        c.start_reset()
        self._wait()

    def character_set_name(self):
        cs = self._checked().character_set
        return cs or self._opts.get("charset", "utf8mb4")

    def set_character_set(self, charset, collation=None):
        """SET NAMES charset [COLLATE collation], through the core: the character set in
        force is then known to the driver whatever the server reports."""
        c = self._ready()
        c.start_set_charset(str(charset), str(collation or ""))
        self._wait()

    def get_server_info(self):
        return self._checked().server_version

    @property
    def server_version(self):
        return self._checked().server_version

    def get_host_info(self):
        return self._checked().host_info

    def thread_id(self):
        return self._checked().connection_id

    def get_proto_info(self):
        return 10

    def show_warnings(self):
        return self._run("SHOW WARNINGS")[0][1]

    def escape(self, obj, mapping=None):
        return self._checked().literal(obj)

    def literal(self, obj):
        return self._checked().literal(obj)

    def escape_string(self, s):
        return self._checked().literal(s)[1:-1]

    # The connection's last statement, whichever cursor ran it (MySQLdb's calls).
    def insert_id(self):
        return self._checked().last_ok()[1]

    def affected_rows(self):
        return self._checked().last_ok()[0]

    def warning_count(self):
        return self._checked().last_ok()[2]

    def kill(self, thread_id):
        """Kills the server connection `thread_id` (KILL CONNECTION)."""
        self._run("KILL %d" % int(thread_id))

    @property
    def in_transaction(self):
        return bool(self._checked().server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)

    # ---- psycopg2's async API (connect(..., async_=True)) and wait callbacks
    def poll(self):
        """One step without blocking: POLL_OK when the operation is done (raising if it
        failed), POLL_READ / POLL_WRITE when it waits for fileno()."""
        return self._checked().poll()

    def fileno(self):
        return self._checked().fileno()

    def isexecuting(self):
        return self._c is not None and self._c.busy

    def cancel(self):
        """Cancels the running operation (killed on the server); poll() until POLL_OK."""
        self._checked().cancel()

    @property
    def async_(self):
        return self._async



__all__ = ["Connection", "set_wait_callback", "get_wait_callback", "POLL_OK", "POLL_READ", "POLL_WRITE"]


class ConnectionView(err.ErrorClasses):
    """What a connection of another API (ambisql.aio's, ambisql.trio's, ambisql.twisted's)
    shows of the synchronous connection it wraps (`_sync`): what needs no waiting."""

    @property
    def sync_connection(self):
        """The synchronous ambisql.Connection underneath (for code run by run_sync())."""
        return self._sync

    def get_autocommit(self):
        return self._sync.get_autocommit()

    def character_set_name(self):
        return self._sync.character_set_name()

    def get_server_info(self):
        return self._sync.get_server_info()

    @property
    def server_version(self):
        return self._sync.server_version

    def thread_id(self):
        return self._sync.thread_id()

    def escape(self, obj):
        return self._sync.escape(obj)

    def literal(self, obj):
        return self._sync.literal(obj)

    @property
    def open(self):
        return self._sync.open

    @property
    def closed(self):
        return not self._sync.open

    def fileno(self):
        return self._sync.fileno()
