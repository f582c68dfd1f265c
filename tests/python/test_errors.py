"""Errors: the classes PyMySQL uses, args == (errno, message), its texts for client errors,
so that SQLAlchemy's and oslo.db's filters work unchanged."""
import pymysql.err
import pytest

import ambisql
import ambisql.err

from conftest import server_kwargs


def test_server_error_classes_match_pymysql():
    for code in list(pymysql.err.error_map) + [999, 1000, 1317, 2000, 4031]:
        ours = ambisql.err._class_for(code).__name__
        theirs = pymysql.err.error_map.get(code)
        theirs = theirs.__name__ if theirs else ("InternalError" if code < 1000 else "OperationalError")
        assert ours == theirs, code


@pytest.fixture
def cur(table):
    c = ambisql.connect(**server_kwargs(autocommit=True))
    cur = c.cursor()
    cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
    cur.execute("CREATE TABLE %s (id INT PRIMARY KEY, a INT, b INT, s VARCHAR(3), t TINYINT, "
                "UNIQUE KEY uniq_t0a0b (a, b)) ENGINE=InnoDB" % table)
    cur.table = table
    yield cur
    c.close()


def test_integrity_errors(cur, table):
    cur.execute("INSERT INTO " + table + " (id, a, b) VALUES (1, 2, 3)")
    with pytest.raises(ambisql.IntegrityError) as e:
        cur.execute("INSERT INTO " + table + " (id, a, b) VALUES (2, 2, 3)")
    assert e.value.args == (1062, "Duplicate entry '2-3' for key 'uniq_t0a0b'")
    assert str(e.value) == "(1062, \"Duplicate entry '2-3' for key 'uniq_t0a0b'\")"
    cur.execute("CREATE TABLE %s_child (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES %s (id)) ENGINE=InnoDB"
                % (table, table))
    try:
        with pytest.raises(ambisql.IntegrityError) as e:
            cur.execute("INSERT INTO " + table + "_child VALUES (1, 99)")
        assert e.value.args[0] == 1452
    finally:
        cur.execute("DROP TABLE " + table + "_child")


@pytest.mark.parametrize("sql,code", [
    ("INSERT INTO {t} (id, t) VALUES (9, 1000)", 1264),
    ("INSERT INTO {t} (id, s) VALUES (9, 'toolong')", 1406),
    ("INSERT INTO {t} (id, a) VALUES (9, 'abc')", 1366),
])
def test_data_errors(cur, table, sql, code):
    with pytest.raises(ambisql.DataError) as e:
        cur.execute(sql.format(t=table))
    assert e.value.args[0] == code


def test_programming_errors(cur):
    with pytest.raises(ambisql.ProgrammingError) as e:
        cur.execute("SELEC 1")
    assert e.value.args[0] == 1064
    with pytest.raises(ambisql.ProgrammingError) as e:
        cur.execute("SELECT * FROM no_such_table_py")
    assert e.value.args[0] == 1146


def test_client_errors():
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(**server_kwargs(port=1, connect_timeout=2))
    assert e.value.args[0] == 2003
    assert e.value.args[1].startswith("Can't connect to MySQL server on '127.0.0.1'")
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(**server_kwargs(password="wrong"))
    assert e.value.args[0] == 1045
    c = ambisql.connect(**server_kwargs(read_timeout=0.3))
    with pytest.raises(ambisql.OperationalError) as e:
        c.cursor().execute("SELECT SLEEP(3)")
    assert e.value.args[0] == 2013
    assert e.value.args[1].startswith("Lost connection to MySQL server during query")


@pytest.mark.parametrize("option, value", [
    ("port", -1), ("port", 70000), ("port", "abc"), ("user", 123), ("database", 5), ("url", 5),
    ("connect_timeout", "x"), ("connect_timeout", -5), ("read_timeout", float("inf")),
    ("write_timeout", float("nan")), ("read_timeout", 1e30),
])
def test_a_bad_connect_option_is_a_programming_error_naming_it(option, value):
    # (It was pybind11's RuntimeError "Unable to cast Python instance to C++ type", or was
    # taken: an infinite or huge timeout converted to integer milliseconds out of range,
    # undefined behaviour.)
    with pytest.raises(ambisql.ProgrammingError) as e:
        ambisql.connect(**server_kwargs(**{option: value}))
    assert e.value.args[1].startswith("connect(): " + option + " must be"), e.value.args


def test_deadlock_is_operational_1213(table):
    a = ambisql.connect(**server_kwargs())
    b = ambisql.connect(**server_kwargs())
    ca, cb = a.cursor(), b.cursor()
    ca.execute("CREATE TABLE %s (id INT PRIMARY KEY, v INT) ENGINE=InnoDB" % table)
    ca.execute("INSERT INTO " + table + " VALUES (1, 0), (2, 0)")
    a.commit()
    ca.execute("UPDATE " + table + " SET v = 1 WHERE id = 1")
    cb.execute("UPDATE " + table + " SET v = 1 WHERE id = 2")
    import threading
    errors = []

    def second():
        try:
            cb.execute("UPDATE " + table + " SET v = 2 WHERE id = 1")
        except ambisql.Error as e:
            errors.append(e)

    t = threading.Thread(target=second)
    t.start()
    import time
    time.sleep(0.3)
    try:
        ca.execute("UPDATE " + table + " SET v = 2 WHERE id = 2")
    except ambisql.Error as e:
        errors.append(e)
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], ambisql.OperationalError)
    assert errors[0].args[0] == 1213
    a.rollback()
    b.rollback()
    a.close()
    b.close()


def test_the_core_object_refuses_misuse_with_type_errors():
    # The per-query methods are plain CPython methods: bad calls must raise, not crash.
    from ambisql._ambisql import _Conn

    raw = _Conn.__new__(_Conn)  # __init__ never ran
    for name in ("poll", "wait", "results", "fileno", "timeout"):
        with pytest.raises(TypeError):
            getattr(raw, name)()
    with pytest.raises(TypeError):
        raw.start_query("SELECT 1")
    c = _Conn()
    with pytest.raises(TypeError):
        c.start_query(b"SELECT 1")
    with pytest.raises(TypeError):
        c.start_query()
    with pytest.raises(TypeError):
        c.start_stream("SELECT 1", None, 3)
    with pytest.raises(TypeError):
        c.poll(1)
    with pytest.raises(TypeError):
        _Conn.poll(object())
    assert c.fileno() == -1 and c.timeout() is None
    c.start_query("SELECT 1")
    with pytest.raises(ambisql.OperationalError) as e:  # not connected: the core's error, mapped
        c.poll()
    assert e.value.args[0] == 2006


def test_the_c_cursor_and_gevent_wait_refuse_misuse_with_type_errors():
    # The C cursor's internal steps and gevent's wait callback object, called wrongly.
    from ambisql._ambisql import CursorBase, GeventWait, _set_wait, _wait

    cur = ambisql.Cursor(None)
    assert cur._quick_start("SELECT 1", None) is None  # no connection: the general path
    for bad in (lambda: cur._quick_take(None), lambda: cur._quick_take(object()), lambda: cur._load(5),
                lambda: cur._load((1, 2)), lambda: cur._quick_start("SELECT 1"), lambda: CursorBase.execute(5, "x"),
                lambda: GeventWait(), lambda: GeventWait(*range(6)), lambda: _set_wait(None, [], print, print, Exception),
                lambda: _set_wait(None, (), 5, print, Exception), lambda: _set_wait(None, (), print, print, 5)):
        with pytest.raises(TypeError):
            bad()
    with pytest.raises(ambisql.InterfaceError):  # (through the general path)
        cur.execute("SELECT 1")
    with pytest.raises(AttributeError):  # (not a connection)
        _wait(object())
    w = GeventWait(*[None] * 7)
    assert w._ambisql_waiter is True and w._ambisql_on_hub is None
    with pytest.raises(TypeError):
        w()
    with pytest.raises(TypeError):
        w(1, 2)
    with pytest.raises(TypeError):
        w(object(), "5", 1, None)
    with pytest.raises(OverflowError):  # (not SystemError: a result with an exception set)
        w(object(), 2 ** 70, 1, None)
    with pytest.raises(AttributeError):  # (not a connection)
        w(object(), 5, 1, None)
