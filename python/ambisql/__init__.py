"""ambisql: a MySQL/MariaDB driver (PEP 249) on a C++ core that is as fast as the C
drivers and cooperates with gevent, eventlet and any event loop.

Built for Debian's /usr/bin/python3 (3.11)."""
import datetime as _dt
from typing import Any
import time as _time

from . import _ambisql, err
from ._ambisql import POLL_OK, POLL_READ, POLL_WRITE, Column  # (Column: description items)
from .connections import Connection, get_wait_callback, set_wait_callback
from .constants import FIELD_TYPE
from .cursors import Cursor, DictCursor, SSCursor, SSDictCursor
from .err import (DatabaseError, DataError, Error, IntegrityError, InterfaceError, InternalError,
                  MySQLError, NotSupportedError, OperationalError, ProgrammingError, Warning)

__version__ = "0.1.0"
version_info = (0, 1, 0, "final", 0)
apilevel = "2.0"
threadsafety = 1
paramstyle = "format"
POLL_ERROR = 3

_ambisql.set_error_factory(err._from_driver)


def connect(*args: Any, **kwargs: Any) -> Connection:
    """A Connection: MySQLdb's and PyMySQL's keyword arguments (host, port, user,
    password/passwd, database/db, unix_socket, charset, autocommit, connect_timeout,
    read_timeout, write_timeout, ssl / ssl_mode with ssl_ca / ssl_cert / ssl_key,
    keepalive (on by default) with keepalive_idle / keepalive_interval / keepalive_count,
    local_infile (a list of allowed files), init_command, client_flag), or
    url="mysql://user:pw@host:port/db?ssl-mode=...". async_=True returns at once: poll()
    until POLL_OK."""
    return Connection(*args, **kwargs)


Connect = connect


class DBAPISet(frozenset):
    def __eq__(self, other):
        if isinstance(other, set):
            return frozenset.__eq__(self, other)
        return other in self

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return frozenset.__hash__(self)


STRING = DBAPISet([FIELD_TYPE.ENUM, FIELD_TYPE.STRING, FIELD_TYPE.VAR_STRING, FIELD_TYPE.VARCHAR])
BINARY = DBAPISet([FIELD_TYPE.BLOB, FIELD_TYPE.LONG_BLOB, FIELD_TYPE.MEDIUM_BLOB, FIELD_TYPE.TINY_BLOB])
NUMBER = DBAPISet([FIELD_TYPE.DECIMAL, FIELD_TYPE.DOUBLE, FIELD_TYPE.FLOAT, FIELD_TYPE.INT24, FIELD_TYPE.LONG,
                   FIELD_TYPE.LONGLONG, FIELD_TYPE.TINY, FIELD_TYPE.YEAR, FIELD_TYPE.NEWDECIMAL])
DATE = DBAPISet([FIELD_TYPE.DATE, FIELD_TYPE.NEWDATE])
TIME = DBAPISet([FIELD_TYPE.TIME])
TIMESTAMP = DBAPISet([FIELD_TYPE.TIMESTAMP, FIELD_TYPE.DATETIME])
DATETIME = TIMESTAMP
ROWID = DBAPISet()

Date = _dt.date
Time = _dt.time
Timestamp = _dt.datetime


def DateFromTicks(ticks):
    return _dt.date(*_time.localtime(ticks)[:3])


def TimeFromTicks(ticks):
    return _dt.time(*_time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks):
    return _dt.datetime(*_time.localtime(ticks)[:6])


Binary = bytes


def classify(error, statements_sent=None, in_transaction=None, commit_sent=None):
    """The retry rule the C++ pool and its transaction helper use, for an ambisql
    exception (or an error number): "retriable" (deadlock 1213, lock wait timeout 1205,
    Galera 1047, 1180 from a Galera node, or a lost connection when nothing could have
    been kept: nothing sent, or inside a transaction whose COMMIT was not sent),
    "outcome_unknown" (the connection was lost while COMMIT, or a statement outside a
    transaction, was in flight; 1180 elsewhere) or "fatal". What was sent is the
    connection's own record, carried by the exception; the keyword arguments override it,
    and without either (an error number) the cautious reading holds: a statement was sent,
    outside a transaction."""
    number = error if isinstance(error, int) else (error.args[0] if error.args and isinstance(error.args[0], int) else 0)
    sent = getattr(error, "_ambisql_sent", None) or (True, False, False, False)
    statements, in_tx, commit, galera = sent
    if statements_sent is not None:
        statements = statements_sent
    if in_transaction is not None:
        in_tx = in_transaction
    if commit_sent is not None:
        commit = commit_sent
    return _ambisql.classify(number, bool(statements), bool(in_tx), bool(commit), bool(galera))


def get_client_info():
    return "ambisql " + __version__


__all__ = [
    "connect", "Connect", "Connection", "Cursor", "DictCursor", "SSCursor", "SSDictCursor",
    "set_wait_callback", "get_wait_callback", "POLL_OK", "POLL_READ", "POLL_WRITE", "POLL_ERROR",
    "apilevel", "threadsafety", "paramstyle", "Warning", "Error", "InterfaceError", "DatabaseError",
    "DataError", "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
    "NotSupportedError", "MySQLError", "STRING", "BINARY", "NUMBER", "DATE", "TIME", "TIMESTAMP",
    "DATETIME", "ROWID", "Date", "Time", "Timestamp", "DateFromTicks", "TimeFromTicks",
    "TimestampFromTicks", "Binary", "__version__", "classify",
]


def __getattr__(name):
    # ambisql.green and ambisql.aio after a plain `import ambisql` (imported on first use,
    # so that neither asyncio's nor a hub's modules load for programs that use neither).
    if name in ("green", "aio"):
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError("module 'ambisql' has no attribute %r" % name)
