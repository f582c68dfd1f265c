"""PEP 249 cursors: buffered (Cursor, DictCursor), streaming (SSCursor, SSDictCursor),
and prepared (binary protocol through the connection's statement cache)."""
from typing import Any, Optional

from . import err
from ._ambisql import CursorBase, _set_plain_cursor

_RESULT_SETS = 0


class Cursor(CursorBase, err.ErrorClasses):
    """Buffered: every row of every result set is read when execute() returns (or, on
    an async connection, once poll() says POLL_OK).

    Its state (description, rowcount, lastrowid, rownumber, arraysize, and the private
    _rows, _sets, _set, _executed, _warnings, _pending, _closed, _stream, _prepared) and
    the methods every buffered query calls (execute, fetchall, _quick_start, _quick_take,
    _load) are CursorBase's, in C (python/src/cursor.cpp): per query, they were most of
    what the cursor cost in Python. _quick_start(query, args) starts a buffered text
    query (not in psycopg2's async mode) and returns the _Conn, or None when the general
    path (_execute) is needed; _quick_take(c) takes its results (ambisql.aio's cursor
    waits between the two its own way); _load(set) makes a resultset the current one."""

    async def _async_soft_close(self):
        # SQLAlchemy >= 2.0.44 awaits this on an async dialect's cursor before handing its
        # result to synchronous code: nothing to do here (a buffered result is read
        # already; an unbuffered one goes on streaming as the caller reads it).
        return None

    def __init__(self, connection, prepared=None):
        self.connection = connection
        if prepared is not None:
            self._prepared = bool(prepared)

    # ---- PEP 249
    def close(self):
        conn = self.connection
        if conn is not None and self._stream and conn._c is not None and not self._closed:
            try:
                self._drain()
            except err.Error:
                pass
        self._closed = True
        self._rows = None
        self._sets = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        return iter(self.fetchone, None)

    def setinputsizes(self, *args):
        """PEP 249: may do nothing, and does nothing."""

    def setoutputsize(self, size, column=None):
        """PEP 249: may do nothing, and does nothing."""

    def _check(self):
        if self._closed:
            raise err.ProgrammingError(0, "the cursor is closed")
        conn = self.connection
        if conn is None or conn._c is None:
            raise err.InterfaceError(0, "the connection is closed")
        return conn

    def mogrify(self, query, args=None):
        """The query as it would be sent, with `args` interpolated."""
        conn = self._check()
        if isinstance(query, bytes):
            query = query.decode(conn._encoding)
        return conn._c.format(query, args)

    def _execute(self, query, args):
        conn = self._begin(query, args)
        if conn._async:
            self._pending = True
            return None
        conn._wait()
        self._take()
        return self.rowcount

    def _execute_and_commit(self, query, args=None):
        """execute(query, args), then the connection's commit(): sent together, one round
        trip, when no transaction is open before (a COMMIT after the statement failing
        then commits nothing, as a rollback would); else one after the other. For
        callers whose next step is the commit (ambisql.twisted's runQuery)."""
        conn = self._check()
        c = conn._c
        if self._prepared or self._stream or conn._async or c.in_transaction or isinstance(query, bytes):
            n = self.execute(query, args)
            conn.commit()
            return n
        conn = self._begin(query, args, commit=True)
        conn._wait()
        self._take()
        return self.rowcount

    def _begin(self, query, args, commit=False):
        # Starts the query (ambisql.aio waits for it its own way); returns the connection.
        conn = self._check()
        conn._ready(self)
        if isinstance(query, bytes):
            query = query.decode(conn._encoding)
        c = conn._c
        if self._stream and self._rows is not None:
            self._drain()
        self._rows = self._sets = None
        self.description = None
        self.rowcount = -1
        self.rownumber = 0
        self._executed = query
        if self._prepared:
            c.start_execute(query, args)
        elif self._stream:
            c.start_stream(query, args)
        elif commit:
            c.start_query_commit(query, args)
        else:
            c.start_query(query, args)
        return conn

    def executemany(self, query: str, args: Any) -> int:
        """Runs `query` once per element of `args`. Sequences of values go to the core's
        execute_many in one operation (the bulk command on MariaDB, pipelined executes
        elsewhere), all or nothing: a failing row leaves none of them applied (on
        transactional tables). INSERT ... RETURNING leaves every row it returned in the
        cursor. Returns the total of affected (or returned) rows."""
        conn = self._check()
        if isinstance(query, bytes):
            query = query.decode(conn._encoding)
        if not isinstance(args, (list, tuple)):
            args = list(args)
        if not args:
            return None
        self._rows = self._sets = None
        self.description = None
        first = args[0]
        if (not isinstance(first, dict) and not self._stream and "%(" not in query
                and not (isinstance(first, (tuple, list)) and not first)):
            c = conn._ready(self)
            self._executed = query
            try:
                c.start_execute_many(query, args)
                conn._wait()
            except err.DatabaseError as e:
                if e.args[0] != 1295:  # ER_UNSUPPORTED_PS: a statement the server cannot prepare
                    raise
            else:
                sets = c.results()
                if not sets:
                    self.rowcount = 0
                    return 0
                if len(sets) > 1:  # RETURNING: a result set per batch of rows, one result here
                    last = sets[-1]
                    sets = [(last[0], tuple(row for s in sets for row in s[1]), last[2], last[3], last[4])]
                return self._load(sets[-1])  # (rowcount, lastrowid, warnings as execute() sets them)
        total = 0
        for a in args:
            self.execute(query, a)
            if self.rowcount > 0:
                total += self.rowcount
        self.rowcount = total
        return total

    def callproc(self, procname, args=()):
        """Calls a stored procedure as MySQLdb and PyMySQL do: each argument goes into a
        server variable @_procname_n first, the call gets those, so OUT and INOUT values
        are read back with SELECT @_procname_n after the call's results were fetched.
        Returns the arguments unchanged; the results come through fetch*/nextset."""
        conn = self._check()
        if args:
            self.execute("SET " + ",".join("@_%s_%d=%s" % (procname, i, conn.literal(a))
                                           for i, a in enumerate(args)))
        self.execute("CALL %s(%s)" % (procname, ",".join("@_%s_%d" % (procname, i) for i in range(len(args)))))
        return args

    def fetchone(self) -> Any:
        rows = self._ensure()
        if rows is None:
            return None
        i = self.rownumber
        if i >= len(rows):
            return None
        self.rownumber = i + 1
        return self._make(rows[i])

    def fetchmany(self, size: Optional[int] = None) -> Any:
        rows = self._ensure()
        if rows is None:
            return ()
        n = self.arraysize if size is None else size
        i = self.rownumber
        chunk = rows[i : i + n]
        self.rownumber = i + len(chunk)
        return self._make_all(chunk)

    def _fetchall(self):  # (fetchall() but Cursor's own first one)
        rows = self._ensure()
        if rows is None:
            return ()
        i = self.rownumber
        chunk = rows[i:] if i else rows
        self.rownumber = len(rows)
        return self._make_all(chunk)

    def nextset(self):
        self._ensure(required=False)
        if self._sets is None or self._set + 1 >= len(self._sets):
            return None
        self._set += 1
        self._load(self._sets[self._set])
        return True

    def scroll(self, value, mode="relative"):
        rows = self._ensure()
        if rows is None:
            raise err.ProgrammingError(0, "no result to scroll")
        n = self.rownumber + value if mode == "relative" else value
        if mode not in ("relative", "absolute"):
            raise err.ProgrammingError(0, "unknown scroll mode %s" % mode)
        if not 0 <= n < len(rows):
            raise IndexError("out of range")
        self.rownumber = n

    @property
    def _last_executed(self):
        return self._executed

    def _warning_count(self):
        return self._warnings

    # ---- internals
    def _make(self, row):
        return row

    def _make_all(self, rows):  # a buffered cursor's rows: a tuple, as PyMySQL's and MySQLdb's
        return rows if type(rows) is tuple else tuple(rows)

    def _ensure(self, required=True):
        if self._pending:
            conn = self.connection
            if conn._c.busy:
                raise err.ProgrammingError(0, "the query is still running: poll() until POLL_OK")
            self._pending = False
            self._take()
        if self._rows is None and required and self._sets is None and not self._stream:
            if self._executed is None:
                raise err.ProgrammingError(0, "execute() first")
        return self._rows

    def _take(self):
        self._quick_take(self.connection._c)

    def _drain(self):
        pass


class DictCursorMixin:
    dict_type = dict

    def _make(self, row):
        if row is None:
            return None
        return self.dict_type(zip(self._names(), row))

    def _make_all(self, rows):
        names = self._names()
        d = self.dict_type
        return [d(zip(names, r)) for r in rows]

    _names_of = (None, [])  # (description, its keys): made once per description

    def _names(self):
        # A name already in the row becomes table.name, as MySQLdb and PyMySQL name it
        # (the table's alias in the query; none: ".name"), so a join's columns of the
        # same name all arrive.
        desc = self.description
        if self._names_of[0] is not desc:
            names, seen = [], set()
            for col in desc or ():
                name = col[0]
                if name in seen:
                    name = "%s.%s" % (getattr(col, "table", ""), name)
                seen.add(name)
                names.append(name)
            self._names_of = (desc, names)
        return self._names_of[1]


class DictCursor(DictCursorMixin, Cursor):
    """Rows as dicts keyed by column name."""


class SSCursor(Cursor):
    """Unbuffered: rows are read from the server as they are fetched, in batches, so a
    result of any size needs little memory. The connection takes no other command until
    every row was fetched (or the cursor closed, which reads and drops the rest)."""

    def __init__(self, connection, prepared=None):
        super().__init__(connection, prepared)
        self._stream = True
        self._batch = []
        self._bpos = 0
        self._done = True

    def __del__(self):  # (only here: a buffered cursor has nothing to read to its end)
        try:
            if not self._closed:
                self.close()
        except Exception:  # interpreter shutting down, or a broken connection
            pass

    def _take(self):
        c = self.connection._c
        self._batch, self._bpos = [], 0
        self.description = c.stream_description()
        self._sets = None
        self._rows = self._batch
        if self.description is None:  # no rows: an OK
            affected, insert_id, warnings = c.stream_ok()
            self.rowcount, self.lastrowid, self._warnings = affected, insert_id, warnings
            self._done = True
        else:
            self.rowcount = -1
            self._done = not c.rows_pending
        if not self._done or c.more_results:  # read by fetches: another command drains it first
            self.connection._streaming(self)

    def _fill(self):
        # The next batch of rows; False at the end of the result set.
        conn = self.connection
        c = conn._c
        if self._done or not c.rows_pending:
            self._done = True
            self.rowcount = self.rownumber
            return False
        c.start_read_rows()
        conn._wait()
        self._batch = c.batch()
        self._bpos = 0
        if not self._batch:
            self._done = True
            affected, insert_id, warnings = c.stream_ok()
            self._warnings = warnings
            self.rowcount = self.rownumber
            return False
        return True

    def _make_all(self, rows):  # an unbuffered cursor's rows: a list, as PyMySQL's
        return rows if type(rows) is list else list(rows)

    def fetchone(self):
        self._ensure(required=False)
        if self._bpos >= len(self._batch) and not self._fill():
            return None
        row = self._batch[self._bpos]
        self._bpos += 1
        self.rownumber += 1
        return self._make(row)

    # (rownumber counts each batch's rows as they are taken: _fill() at the end makes it
    # the rowcount)
    def fetchmany(self, size=None):
        n = self.arraysize if size is None else size
        out = []
        while len(out) < n:
            if self._bpos >= len(self._batch) and not self._fill():
                break
            take = self._batch[self._bpos : self._bpos + (n - len(out))]
            self._bpos += len(take)
            self.rownumber += len(take)
            out.extend(take)
        return self._make_all(out)

    def fetchall(self):
        self._ensure(required=False)
        out = self._batch[self._bpos :]
        self._bpos = len(self._batch)
        self.rownumber += len(out)
        while self._fill():
            out.extend(self._batch)
            self._bpos = len(self._batch)
            self.rownumber += len(self._batch)
        return self._make_all(out)

    def __iter__(self):
        self._ensure(required=False)
        make = self._make
        while True:
            if self._bpos >= len(self._batch) and not self._fill():
                return
            batch, start = self._batch, self._bpos
            self._bpos = len(batch)
            self.rownumber += len(batch) - start
            for i in range(start, len(batch)):
                yield make(batch[i])

    def nextset(self):
        self._drain(keep_next=True)
        c = self.connection._c
        if not c.more_results:
            return None
        c.start_next_result()
        self.connection._wait()
        self._take()
        return True

    def scroll(self, value, mode="relative"):
        if mode != "relative" or value < 0:
            raise err.NotSupportedError(0, "an unbuffered cursor scrolls forward only")
        for _ in range(value):
            if self.fetchone() is None:
                raise IndexError("out of range")

    def _drain(self, keep_next=False):
        # Reads and drops the rest of this result set (and, unless keep_next, of every
        # result set after it), so that the connection can take another command.
        conn = self.connection
        if conn is None or conn._c is None or self._pending:
            return
        c = conn._c
        if keep_next:
            while self._fill():
                pass
        elif not self._done or c.more_results:
            c.start_discard()
            conn._wait()
        self._done = True
        self._batch, self._bpos = [], 0


class SSDictCursor(DictCursorMixin, SSCursor):
    """Unbuffered, rows as dicts."""


_set_plain_cursor(Cursor)


class CursorView:
    """What a cursor of another API (ambisql.aio's, ambisql.twisted's) shows of the
    synchronous cursor it wraps (`_cur`): its attributes, as they are."""

    def __init__(self, connection, sync_cursor):
        self.connection = connection
        self._cur = sync_cursor

    @property
    def description(self):
        return self._cur.description

    @property
    def rowcount(self):
        return self._cur.rowcount

    @property
    def lastrowid(self):
        return self._cur.lastrowid

    @property
    def rownumber(self):
        return self._cur.rownumber

    @property
    def arraysize(self):
        return self._cur.arraysize

    @arraysize.setter
    def arraysize(self, n):
        self._cur.arraysize = n

    @property
    def closed(self):
        return self._cur._closed

    def mogrify(self, query, args=None):
        return self._cur.mogrify(query, args)
