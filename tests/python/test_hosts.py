"""Several hosts from Python: connect(hosts=...), the SQLAlchemy URL's hosts= parameter,
and classify(), the retry rule the C++ pool uses."""
import os
import threading

import pytest
import sqlalchemy as sa

import ambisql
from conftest import server_kwargs

PORT = int(os.environ["AMBISQL_TEST_PORT"])


def test_a_dead_host_first_in_line_is_passed_over():
    kw = server_kwargs()
    kw.pop("host"), kw.pop("port")
    for hosts in ("127.0.0.1:1,127.0.0.1:%d" % PORT, ["127.0.0.1:1", ("127.0.0.1", PORT)]):
        c = ambisql.connect(hosts=hosts, **kw)
        cur = c.cursor()
        cur.execute("SELECT @@port")
        assert cur.fetchone() == (PORT,)
        c.close()


def test_no_live_host_names_every_host_tried():
    kw = server_kwargs()
    kw.pop("host"), kw.pop("port")
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(hosts="127.0.0.1:1,127.0.0.1:2", host_mode="load_balance", **kw)
    assert e.value.args[0] == 2003
    assert "127.0.0.1:1" in e.value.args[1] and "127.0.0.1:2" in e.value.args[1]


def test_the_galera_check_refuses_a_server_without_galera():
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(galera_check=True, **server_kwargs())
    assert "not a Galera node" in e.value.args[1]


def test_sqlalchemy_urls_take_the_hosts():
    pw = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
    for driver in ("ambisql", "ambisql_async"):
        url = "mysql+%s://ambisql:%s@/ambisql_test?hosts=127.0.0.1:1,127.0.0.1:%d&host_mode=sequential" % (
            driver, pw, PORT)
        if driver == "ambisql":
            e = sa.create_engine(url)
            with e.connect() as c:
                assert c.exec_driver_sql("SELECT @@port").scalar() == PORT
            e.dispose()
        else:
            import asyncio

            from sqlalchemy.ext.asyncio import create_async_engine

            async def main():
                ae = create_async_engine(url)
                async with ae.connect() as c:
                    assert (await c.exec_driver_sql("SELECT @@port")).scalar() == PORT
                await ae.dispose()

            asyncio.run(main())


def test_classify_reads_what_the_connection_recorded_as_sent():
    # a refused connect: nothing of the work went out (it was "outcome_unknown": the
    # classification assumed statements had been sent)
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(**server_kwargs(port=1, connect_timeout=2))
    assert e.value.args[0] == 2003
    assert ambisql.classify(e.value) == "retriable"
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    # inside a transaction: the server rolls it back with the connection, nothing kept
    conn = ambisql.connect(**server_kwargs())
    conn.cursor().execute("SELECT 1")  # (autocommit off: a transaction is open)
    admin.cursor().execute("KILL %d" % conn.thread_id())
    with pytest.raises(ambisql.OperationalError) as e:
        conn.cursor().execute("SELECT 2")
    assert ambisql.classify(e.value) == "retriable"
    # the connection known to be gone: the next statement is not even sent (2006 used to
    # be "outcome_unknown" whatever had been sent)
    with pytest.raises(ambisql.Error) as e:
        conn.cursor().execute("SELECT 3")
    assert e.value.args[0] == 2006
    assert ambisql.classify(e.value) == "retriable"
    # an autocommit statement in flight when the connection died: it may have been applied
    conn = ambisql.connect(**server_kwargs(autocommit=True))
    cur = conn.cursor()
    tid = conn.thread_id()
    threading.Timer(0.3, lambda: admin.cursor().execute("KILL %d" % tid)).start()
    with pytest.raises(ambisql.OperationalError) as e:
        cur.execute("SELECT SLEEP(5)")
    assert ambisql.classify(e.value) == "outcome_unknown"
    # COMMIT in flight
    assert ambisql.classify(e.value, in_transaction=True, commit_sent=True) == "outcome_unknown"
    admin.close()
    # 1180 without a Galera node's record: its outcome is unknown
    assert ambisql.classify(1180) == "outcome_unknown"


def test_classify_is_the_pools_retry_rule():
    assert ambisql.classify(ambisql.OperationalError(1213, "Deadlock found")) == "retriable"
    assert ambisql.classify(1205) == "retriable"
    assert ambisql.classify(ambisql.IntegrityError(1062, "Duplicate entry")) == "fatal"
    lost = ambisql.OperationalError(2013, "Lost connection to MySQL server during query")
    assert ambisql.classify(lost, in_transaction=True) == "retriable"
    assert ambisql.classify(lost, in_transaction=True, commit_sent=True) == "outcome_unknown"
    assert ambisql.classify(lost) == "outcome_unknown", "an autocommit statement may have been applied"
    assert ambisql.classify(ambisql.OperationalError(2003, "Can't connect"), statements_sent=False) == "retriable"
