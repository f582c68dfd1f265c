"""The Python module on the Galera cluster of scripts/galera (scripts/test runs this in its
Galera step): host lists with the Galera check from connect() and from a SQLAlchemy URL, a
desynced node passed over, wsrep_sync_wait set."""
import os

import sqlalchemy as sa

import ambisql

PORTS = [int(p) for p in os.environ["AMBISQL_GALERA_PORTS"].split(",")]
ADDRS = (os.environ.get("AMBISQL_GALERA_HOSTS") or ",".join(["127.0.0.1"] * len(PORTS))).split(",")
HOSTS = ",".join("%s:%d" % hp for hp in zip(ADDRS, PORTS))
KW = dict(user="ambisql", password="ambisql-pw", database="ambisql_test", ssl_mode="disabled")


def port_of(conn):
    cur = conn.cursor()
    cur.execute("SELECT @@port")
    return cur.fetchone()[0]


def test_a_sqlalchemy_url_spreads_connections_over_the_nodes():
    url = "mysql+ambisql://ambisql:ambisql-pw@/ambisql_test?hosts=%s&host_mode=load-balance&galera_check=1" % HOSTS
    e = sa.create_engine(url, poolclass=sa.pool.NullPool)
    seen = set()
    for _ in range(30):
        with e.connect() as c:
            seen.add(c.exec_driver_sql("SELECT @@port").scalar())
    assert seen == set(PORTS)


def test_a_desynced_node_is_passed_over_and_sync_wait_is_set():
    # (after the spreading test: a node passed over stays on this process's deny list a while)
    admin = ambisql.connect(host=ADDRS[0], port=PORTS[0], autocommit=True, **KW)
    admin.cursor().execute("SET GLOBAL wsrep_desync = ON")
    try:
        for _ in range(5):
            c = ambisql.connect(hosts=HOSTS, galera_check=True, wsrep_sync_wait=1, **KW)
            assert port_of(c) != PORTS[0]
            cur = c.cursor()
            cur.execute("SELECT @@wsrep_sync_wait")
            assert cur.fetchone() == (1,)
            c.close()
    finally:
        admin.cursor().execute("SET GLOBAL wsrep_desync = OFF")
        admin.close()
