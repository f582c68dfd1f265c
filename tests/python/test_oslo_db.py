"""oslo.db (Debian python3-oslo.db) on mysql+ambisql, beside mysql+pymysql: its engine
factory works, and its exception filters turn ambisql's errors into the same oslo.db
exceptions, with the same details, as PyMySQL's."""
import os
import threading
import uuid

import pytest
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import engines

import ambisql
from conftest import server_kwargs

SOCK = os.environ["AMBISQL_TEST_SOCKET"]
PW = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
DRIVERS = ["ambisql", "pymysql"]


def make_engine(driver, **kw):
    url = "mysql+%s://ambisql:%s@localhost/ambisql_test?unix_socket=%s" % (driver, PW, SOCK)
    return engines.create_engine(url, max_retries=1, retry_interval=0, **kw)


@pytest.fixture(scope="module")
def tables():
    """Parent and child tables with a composite unique key and a foreign key."""
    tag = uuid.uuid4().hex[:8]
    parent, child = "op_" + tag, "oc_" + tag
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    cur = admin.cursor()
    cur.execute("CREATE TABLE %s (id INT PRIMARY KEY, a INT, b VARCHAR(8), "
                "CONSTRAINT uniq_t0a0b UNIQUE (a, b)) ENGINE=InnoDB" % parent)
    cur.execute("CREATE TABLE %s (id INT PRIMARY KEY, pid INT, "
                "CONSTRAINT fk_%s FOREIGN KEY (pid) REFERENCES %s (id)) ENGINE=InnoDB" % (child, child, parent))
    cur.execute("INSERT INTO %s VALUES (1, 1, 'x'), (2, 2, 'y')" % parent)
    yield parent, child
    cur.execute("DROP TABLE %s" % child)
    cur.execute("DROP TABLE %s" % parent)
    admin.close()


def caught(driver, fn):
    e = make_engine(driver)
    try:
        with e.connect() as c:
            fn(c)
    except db_exc.DBError as exc:
        return exc
    finally:
        e.dispose()
    pytest.fail("no oslo.db exception")


def test_the_engine_factory_works_and_applies_its_sql_mode():
    e = make_engine("ambisql", mysql_sql_mode="TRADITIONAL")
    with e.connect() as c:
        assert "STRICT_ALL_TABLES" in c.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar()
        assert c.exec_driver_sql("SELECT 1").scalar() == 1
    e.dispose()


def test_duplicate_entry_names_the_columns_and_value(tables):
    parent, _ = tables
    got = {d: caught(d, lambda c: c.exec_driver_sql("INSERT INTO %s VALUES (3, 1, 'x')" % parent))
           for d in DRIVERS}
    for exc in got.values():
        assert type(exc) is db_exc.DBDuplicateEntry
    assert got["ambisql"].columns == got["pymysql"].columns == ["a", "b"]
    assert got["ambisql"].value == got["pymysql"].value == "1-x"


def test_foreign_key_violation_is_a_reference_error(tables):
    parent, child = tables
    got = {d: caught(d, lambda c: c.exec_driver_sql("INSERT INTO %s VALUES (1, 42)" % child)) for d in DRIVERS}
    for exc in got.values():
        assert type(exc) is db_exc.DBReferenceError
    a, p = got["ambisql"], got["pymysql"]
    assert (a.key, a.key_table, a.constraint, a.table) == (p.key, p.key_table, p.constraint, p.table)
    assert a.key_table == parent and a.table == child


def test_data_too_long_is_a_data_error(tables):
    parent, _ = tables
    got = {d: caught(d, lambda c: c.exec_driver_sql("INSERT INTO %s VALUES (9, 9, 'far too long')" % parent))
           for d in DRIVERS}
    assert [type(x) for x in got.values()] == [db_exc.DBDataError] * 2


def test_lock_wait_timeout_is_a_deadlock(tables):
    parent, _ = tables

    def run(driver):
        holder = make_engine(driver)
        with holder.connect() as h:
            t = h.begin()
            h.exec_driver_sql("SELECT * FROM %s WHERE id = 1 FOR UPDATE" % parent)
            try:
                return caught(driver, lambda c: (c.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1"),
                                                  c.exec_driver_sql("UPDATE %s SET a = a WHERE id = 1" % parent)))
            finally:
                t.rollback()
                holder.dispose()

    assert [type(run(d)) for d in DRIVERS] == [db_exc.DBDeadlock] * 2


def test_a_real_deadlock_is_a_deadlock(tables):
    parent, _ = tables

    def run(driver):
        engine = make_engine(driver, max_pool_size=4)
        barrier = threading.Barrier(2)
        errors = []

        def worker(first, second):
            try:
                with engine.begin() as c:
                    c.exec_driver_sql("SELECT * FROM %s WHERE id = %d FOR UPDATE" % (parent, first))
                    barrier.wait(5)
                    c.exec_driver_sql("SELECT * FROM %s WHERE id = %d FOR UPDATE" % (parent, second))
            except db_exc.DBError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(1, 2)), threading.Thread(target=worker, args=(2, 1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        engine.dispose()
        return errors

    for d in DRIVERS:
        errors = run(d)
        assert [type(x) for x in errors] == [db_exc.DBDeadlock], d


def test_a_killed_connection_is_a_connection_error():
    def kill_own(c):
        cid = c.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        admin = ambisql.connect(**server_kwargs(autocommit=True))
        admin.cursor().execute("KILL %d" % cid)
        admin.close()
        c.exec_driver_sql("SELECT 1")

    got = {d: caught(d, kill_own) for d in DRIVERS}
    assert [type(x) for x in got.values()] == [db_exc.DBConnectionError] * 2


def test_no_server_is_a_connection_error():
    for d in DRIVERS:
        url = "mysql+%s://ambisql:%s@127.0.0.1:1/ambisql_test" % (d, PW)
        with pytest.raises(db_exc.DBConnectionError):
            engines.create_engine(url, max_retries=1, retry_interval=0).connect()
