"""PEP 249 conformance, and the MySQLdb/PyMySQL surface that code written for them uses."""
import os
import pickle
import warnings

import pytest

import ambisql
from ambisql.constants import CLIENT

from conftest import running, server_kwargs, socket_kwargs


def test_module_globals():
    assert ambisql.apilevel == "2.0"
    assert ambisql.threadsafety == 1
    assert ambisql.paramstyle == "format"
    assert ambisql.__version__
    for name in ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
                 "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"):
        assert getattr(ambisql, name).__name__ == name  # SQLAlchemy picks its wrappers by name
    assert issubclass(ambisql.IntegrityError, ambisql.DatabaseError)
    assert issubclass(ambisql.DatabaseError, ambisql.Error)
    assert issubclass(ambisql.InterfaceError, ambisql.Error)
    assert ambisql.STRING == ambisql.constants.FIELD_TYPE.VAR_STRING
    assert ambisql.Binary(b"x") == b"x"
    assert CLIENT.FOUND_ROWS == 2 and CLIENT.MULTI_STATEMENTS == 1 << 16


def test_connect_spellings():
    for kw in (server_kwargs(), server_kwargs(passwd="ambisql-pw", password=None, db="ambisql_test", database=None),
               socket_kwargs()):
        kw = {k: v for k, v in kw.items() if v is not None}
        c = ambisql.connect(**kw)
        cur = c.cursor()
        cur.execute("SELECT DATABASE(), CURRENT_USER()")
        assert cur.fetchone()[0] == "ambisql_test"
        c.close()
    url = "mysql://ambisql:%s@127.0.0.1:%s/ambisql_test?ssl-mode=disabled" % (
        os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), os.environ["AMBISQL_TEST_PORT"])
    c = ambisql.connect(url=url)
    assert c.open and c.get_server_info()
    c.close()
    with pytest.raises(TypeError):
        ambisql.connect(no_such_argument=1, **server_kwargs())


def test_tls_modes():
    ca = os.environ["AMBISQL_TEST_CA"]
    c = ambisql.connect(**server_kwargs(ssl_mode="verify_identity", ssl_ca=ca))
    cur = c.cursor()
    cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
    assert cur.fetchone()[1].startswith("TLS")
    c.close()
    c = ambisql.connect(**server_kwargs(ssl_mode=None, ssl={"ca": ca}))
    assert c._c.tls_active
    c.close()
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(**server_kwargs(ssl_mode="verify_ca", ssl_ca=os.environ["AMBISQL_TEST_OTHER_CA"]))
    assert e.value.args[0] == 2026


def test_bind_address_is_the_source_the_server_sees(tmp_path):
    # bind_address= (PyMySQL's), or an option file's bind-address: the connection comes from
    # that local address (127.0.0.2 here, not loopback's usual 127.0.0.1).
    sql = "SELECT host FROM information_schema.processlist WHERE id = CONNECTION_ID()"
    c = ambisql.connect(**server_kwargs(bind_address="127.0.0.2"))
    cur = c.cursor()
    cur.execute(sql)
    assert cur.fetchone()[0].startswith("127.0.0.2:")
    c.close()
    opt = tmp_path / "my.cnf"
    opt.write_text("[client]\nbind-address = 127.0.0.3\n")
    c = ambisql.connect(read_default_file=str(opt), **server_kwargs())
    cur = c.cursor()
    cur.execute(sql)
    assert cur.fetchone()[0].startswith("127.0.0.3:")
    c.close()
    with pytest.raises(ambisql.ProgrammingError, match="bad bind address"):
        ambisql.connect(**server_kwargs(bind_address="not-an-address"))


def test_collation_is_applied_and_conv_refused():
    # collation: SET NAMES <charset> COLLATE <collation> after connecting, as PyMySQL does
    # (it was accepted and ignored); conv (MySQLdb's custom converters) is refused rather
    # than ignored; names that are not names are refused before anything is sent.
    c = ambisql.connect(**socket_kwargs(collation="utf8mb4_bin"))
    cur = c.cursor()
    cur.execute("SELECT @@collation_connection, 'a' = 'A'")
    assert cur.fetchone() == ("utf8mb4_bin", 0)
    with pytest.raises(ambisql.ProgrammingError):
        c.set_character_set("utf8mb4; DROP TABLE x")
    c.set_character_set("latin1", "latin1_general_cs")
    cur.execute("SELECT @@collation_connection")
    assert cur.fetchone() == ("latin1_general_cs",)
    c.close()
    with pytest.raises(ambisql.NotSupportedError):
        ambisql.connect(**socket_kwargs(conv={}))
    with pytest.raises(ambisql.ProgrammingError):
        ambisql.connect(**socket_kwargs(collation="x' OR 1"))


def test_an_option_file_supplies_what_the_arguments_leave_unset(tmp_path):
    # read_default_file / read_default_group, as PyMySQL reads them: the group's user,
    # password, host, port, socket, database, charset and TLS files. The file was
    # accepted and ignored before: its TLS settings too.
    pw = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
    opt = tmp_path / "my.cnf"
    opt.write_text("# comment\n[client]\nuser = ambisql\npassword = \"%s\"\nsocket = %s\n"
                   "database = ambisql_test\ndefault_character_set = latin1\nskip-ssl\n"
                   "[tls]\nhost = 127.0.0.1\nport = %s\nuser = ambisql\npassword = %s\n"
                   "ssl-ca = %s\n!includedir /nonexistent.d\n"
                   % (pw, os.environ["AMBISQL_TEST_SOCKET"], os.environ["AMBISQL_TEST_PORT"], pw,
                      os.environ["AMBISQL_TEST_OTHER_CA"]))
    c = ambisql.connect(read_default_file=str(opt))
    cur = c.cursor()
    cur.execute("SELECT DATABASE(), USER() LIKE 'ambisql@%%', @@character_set_client")
    assert cur.fetchone() == ("ambisql_test", 1, "latin1")
    c.close()
    c = ambisql.connect(read_default_file=str(opt), database="mysql", charset="utf8mb4")  # arguments win
    cur = c.cursor()
    cur.execute("SELECT DATABASE(), @@character_set_client")
    assert cur.fetchone() == ("mysql", "utf8mb4")
    c.close()
    # [tls] names a CA that did not sign the server's certificate: verified, so refused
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(read_default_file=str(opt), read_default_group="tls")
    assert e.value.args[0] == 2026
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(read_default_file=str(tmp_path / "missing.cnf"))
    assert e.value.args[0] == 2000 and "missing.cnf" in e.value.args[1]


def test_one_precedence_for_every_source_option_file_then_url_then_keywords(tmp_path):
    # One builder decides (the core's config_builder): defaults, then the option file, the
    # URL, the keyword arguments, each setting only what it names. The option file's user
    # and password used to override the URL's (the file filled the keywords in), and
    # keyword defaults (get_server_public_key=False, connect_timeout=10) the URL's.
    pw = os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw")
    opt = tmp_path / "my.cnf"
    opt.write_text("[client]\nuser = nobody_here\npassword = wrong\ndatabase = mysql\nconnect_timeout = 7\n")
    url = "mysql://ambisql:%s@127.0.0.1:%s/ambisql_test?ssl-mode=disabled&compress=1" % (
        pw, os.environ["AMBISQL_TEST_PORT"])
    c = ambisql.connect(url=url, read_default_file=str(opt))
    cur = c.cursor()
    cur.execute("SELECT DATABASE(), USER() LIKE 'ambisql@%%'")
    assert cur.fetchone() == ("ambisql_test", 1)
    cur.execute("SHOW SESSION STATUS LIKE 'Compression'")
    assert cur.fetchone()[1] == "ON", "the URL's compress=1, not a keyword's default"
    c.close()
    c = ambisql.connect(url=url, read_default_file=str(opt), database="mysql", compress=False)
    cur = c.cursor()
    cur.execute("SELECT DATABASE()")
    assert cur.fetchone() == ("mysql",), "a keyword given wins over the URL"
    cur.execute("SHOW SESSION STATUS LIKE 'Compression'")
    assert cur.fetchone()[1] == "OFF", "compress=False given: false, not unset"
    c.close()
    with pytest.raises(ambisql.ProgrammingError, match="option file's port"):
        opt.write_text("[client]\nport = many\n")
        ambisql.connect(read_default_file=str(opt), **server_kwargs())


def test_the_submodules_are_there_after_a_plain_import():
    # `import ambisql; ambisql.green.patch_gevent()` raised AttributeError.
    import subprocess
    import sys

    code = "import ambisql; print(callable(ambisql.green.patch_gevent), callable(ambisql.aio.connect))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "True True", p.stderr
    with pytest.raises(AttributeError):
        ambisql.no_such_thing


def test_execute_fetch_and_description(conn):
    cur = conn.cursor()
    assert cur.description is None and cur.rowcount == -1
    n = cur.execute("SELECT seq, CONCAT('r', seq) AS name FROM seq_1_to_5")
    assert n == 5 and cur.rowcount == 5
    assert [d[0] for d in cur.description] == ["seq", "name"]
    assert len(cur.description[0]) == 7
    assert cur.fetchone() == (1, "r1")
    cur.arraysize = 2
    assert cur.fetchmany() == ((2, "r2"), (3, "r3"),)
    assert cur.fetchmany(5) == ((4, "r4"), (5, "r5"),)
    assert cur.fetchone() is None and cur.fetchall() == () and cur.fetchmany() == ()
    cur.execute("SELECT seq FROM seq_1_to_3")
    assert [r[0] for r in cur] == [1, 2, 3]
    cur.scroll(0, "absolute")
    assert cur.fetchone() == (1,)
    cur.scroll(1)
    assert cur.fetchone() == (3,)
    with pytest.raises(IndexError):
        cur.scroll(10)


def test_description_follows_every_change_of_columns(conn):
    # A connection reuses the previous description while the columns are the same; any
    # change of name, type, length, scale or nullability must show.
    cur = conn.cursor()
    cur.execute("CREATE TEMPORARY TABLE desc_t (x INT NULL, y INT NOT NULL)")
    cur.execute("INSERT INTO desc_t VALUES (1, 2)")
    seen = []
    for sql in ["SELECT 1 AS a", "SELECT 2 AS a", "SELECT 3 AS b", "SELECT 'x' AS b", "SELECT 'xyz' AS b",
                "SELECT CAST(1 AS DECIMAL(5,1)) AS b", "SELECT CAST(1 AS DECIMAL(5,2)) AS b",
                "SELECT x AS b FROM desc_t", "SELECT y AS b FROM desc_t", "SELECT 1 AS a, 2 AS b", "SELECT 1 AS a"]:
        cur.execute(sql)
        cur.fetchall()
        seen.append(cur.description)
    names = [[d[0] for d in desc] for desc in seen]
    assert names == [["a"], ["a"], ["b"], ["b"], ["b"], ["b"], ["b"], ["b"], ["b"], ["a", "b"], ["a"]]
    assert seen[0] == seen[1] and seen[0] == seen[10]
    for i in range(2, 10):
        assert seen[i] != seen[i - 1], (i, seen[i - 1], seen[i])
    assert seen[5][0][5] == 1 and seen[6][0][5] == 2  # scale
    assert seen[3][0][3] != seen[4][0][3]  # length
    assert seen[7][0][:6] == seen[8][0][:6]  # the same INT but for nullability
    assert seen[7][0][6] is True and seen[8][0][6] is False


def test_dml_rowcount_lastrowid_and_transactions(conn, table):
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, v INT)" % table)
    assert cur.execute("INSERT INTO " + table + " (v) VALUES (%s), (%s)", (10, 20)) == 2
    assert cur.lastrowid == 1
    conn.commit()
    assert not conn.get_autocommit(), "PEP 249: transactions by default"
    cur.execute("UPDATE " + table + " SET v = v + 1")
    assert cur.rowcount == 2
    conn.rollback()
    cur.execute("SELECT SUM(v) FROM " + table)
    assert cur.fetchone()[0] == 30
    conn.autocommit(True)
    assert conn.get_autocommit()
    cur.execute("UPDATE " + table + " SET v = 10 WHERE id = 1")  # matches 1, changes none
    assert cur.rowcount == 0


def test_found_rows_client_flag(table):
    c = ambisql.connect(**server_kwargs(client_flag=CLIENT.FOUND_ROWS, autocommit=True))
    cur = c.cursor()
    cur.execute("CREATE TABLE %s (id INT PRIMARY KEY, v INT)" % table)
    cur.execute("INSERT INTO " + table + " VALUES (1, 5)")
    assert cur.execute("UPDATE " + table + " SET v = 5") == 1, "rows matched, not rows changed"
    c.close()


def test_executemany_and_bulk(conn, table):
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(20))" % table)
    rows = [(i, "v%d" % i) for i in range(5000)]
    assert cur.executemany("INSERT INTO " + table + " (id, v) VALUES (%s, %s)", rows) == 5000
    assert cur.executemany("UPDATE " + table + " SET v = %s WHERE id = %s", [("a", 1), ("b", 2)]) == 2
    cur.execute("SELECT COUNT(*), MIN(v) FROM " + table)
    assert cur.fetchone() == (5000, "a")
    assert cur.executemany("INSERT INTO " + table + " VALUES (%s, %s)", []) is None


def test_executemany_insert_sets_lastrowid_as_mysqldb_and_pymysql_do(conn, table):
    # The first id the (last) INSERT generated, as their one multi-row INSERT reports it;
    # the bulk path left None there. Warnings and rowcount come from the same result.
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, v TINYINT)" % table)
    cur.execute("INSERT INTO " + table + " (v) VALUES (1), (2)")
    assert cur.lastrowid == 1
    assert cur.executemany("INSERT INTO " + table + " (v) VALUES (%s)", [(3,), (4,)]) == 2
    assert (cur.rowcount, cur.lastrowid, cur.description) == (2, 3, None)
    cur.execute("SELECT id FROM " + table + " WHERE v = 3")
    assert cur.fetchall() == ((3,),)


@pytest.fixture
def multi():
    c = ambisql.connect(**server_kwargs(client_flag=CLIENT.MULTI_STATEMENTS))
    yield c
    if c.open:
        c.close()


def test_multiple_result_sets_and_callproc(multi):
    conn = multi
    cur = conn.cursor()
    cur.execute("SELECT 1; SELECT 2, 3; DO 0")
    assert cur.fetchall() == ((1,),)
    assert cur.nextset()
    assert cur.fetchall() == ((2, 3),)
    assert cur.nextset()
    assert cur.description is None
    assert cur.nextset() is None
    cur.execute("DROP PROCEDURE IF EXISTS py_proc")
    cur.execute("CREATE PROCEDURE py_proc(IN a INT) BEGIN SELECT a * 2; END")
    assert cur.callproc("py_proc", (21,)) == (21,)
    assert cur.fetchone() == (42,)
    cur.execute("DROP PROCEDURE py_proc")


def test_callproc_out_and_inout_parameters(conn):
    # As MySQLdb and PyMySQL: OUT / INOUT values are read back from @_procname_n.
    cur = conn.cursor()
    cur.execute("DROP PROCEDURE IF EXISTS py_outproc")
    cur.execute("CREATE PROCEDURE py_outproc(IN a INT, OUT b INT, INOUT c VARCHAR(20)) "
                "BEGIN SET b = a * 2; SET c = CONCAT(c, '!'); SELECT a; END")
    assert cur.callproc("py_outproc", (21, None, "it's")) == (21, None, "it's")
    assert cur.fetchall() == ((21,),)
    while cur.nextset():
        pass
    cur.execute("SELECT @_py_outproc_1, @_py_outproc_2")
    assert cur.fetchone() == (42, "it's!")
    cur.execute("DROP PROCEDURE py_outproc")


def test_mogrify_escaping_and_in_lists(conn):
    cur = conn.cursor()
    assert cur.mogrify("SELECT %s, %s, %s", ("it's", None, 3)) == "SELECT 'it\\'s', NULL, 3"
    assert cur.mogrify("SELECT %(a)s + %(a)s", {"a": 2}) == "SELECT 2 + 2"
    assert cur.mogrify("SELECT 100%%") == "SELECT 100%%", "no args: the query as it is"
    assert cur.mogrify("SELECT %s, 100%%", (1,)) == "SELECT 1, 100%"
    cur.execute("SELECT seq FROM seq_1_to_9 WHERE seq IN %s", ([2, 4, 8],))
    assert [r[0] for r in cur.fetchall()] == [2, 4, 8]
    cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
    assert cur.mogrify("SELECT %s", ("it's\\",)) == "SELECT 'it''s\\'"
    cur.execute("SELECT %s", ("x\\' OR 1=1 -- ",))
    assert cur.fetchone()[0] == "x\\' OR 1=1 -- "


def test_dict_rows_keep_repeated_column_names_apart_as_mysqldb_and_pymysql_do(conn):
    # A name seen before in the row becomes table.name (the table's alias in the query;
    # none: ".name"): a join's two ids both arrive. The later column used to overwrite
    # the earlier. The description stays PEP 249's 7-item tuples.
    for cls in (ambisql.DictCursor, ambisql.SSDictCursor):
        cur = conn.cursor(cls)
        cur.execute("SELECT t1.id, t2.id, 3 AS id, 4 AS x FROM (SELECT 1 AS id) t1 JOIN (SELECT 2 AS id) t2")
        assert cur.fetchall() == [{"id": 1, "t2.id": 2, ".id": 3, "x": 4}]
        assert [len(d) for d in cur.description] == [7] * 4 and cur.description[1][0] == "id"
        assert [d.table for d in cur.description] == ["t1", "t2", "", ""]
        assert cur.description[3] == ("x", 3, None, 1, 1, 0, False)
        assert pickle.loads(pickle.dumps(cur.description)) == cur.description
        cur.close()


def test_dict_streaming_and_prepared_cursors(conn):
    cur = conn.cursor(ambisql.DictCursor)
    cur.execute("SELECT 1 AS a, 'b' AS b")
    assert cur.fetchall() == [{"a": 1, "b": "b"}]
    ss = conn.cursor(ambisql.SSCursor)
    ss.execute("SELECT seq FROM seq_1_to_10000")
    assert ss.fetchone() == (1,)
    assert len(ss.fetchmany(99)) == 99
    assert len(ss.fetchall()) == 9900
    # Read to its end, an unbuffered result knows its size: every row counted (the rows of
    # the fetch that reached the end were left out of rowcount: 100 here, not 10000).
    assert (ss.rownumber, ss.rowcount) == (10000, 10000)
    ss.execute("SELECT seq FROM seq_1_to_2500")
    assert len(ss.fetchmany(3000)) == 2500 and (ss.rownumber, ss.rowcount) == (2500, 2500)
    ss.execute("SELECT seq FROM seq_1_to_100000")
    assert ss.fetchone() == (1,)
    ss.close()  # the rest is read and dropped: the connection takes commands again
    other = conn.cursor()
    other.execute("SELECT 'in step'")
    assert other.fetchone() == ("in step",)
    sd = conn.cursor(ambisql.SSDictCursor)
    sd.execute("SELECT seq AS n FROM seq_1_to_3")
    assert list(sd) == [{"n": 1}, {"n": 2}, {"n": 3}]
    p = conn.cursor(prepared=True)
    for i in range(3):
        p.execute("SELECT %s * 2, %s", (i, "x"))
        assert p.fetchone() == (i * 2, "x")


def test_connection_methods(conn):
    assert conn.ping() is True
    assert conn.character_set_name() == "utf8mb4"
    assert conn.thread_id() > 0
    assert "MariaDB" in conn.get_server_info()
    assert conn.escape("a'b") == "'a\\'b'"
    conn.select_db("ambisql_test")
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    with ambisql.connect(**server_kwargs()) as c2:
        c2.cursor().execute("SELECT 1")
    assert not c2.open


def test_closed_connection_and_cursor(kwargs):
    c = ambisql.connect(**kwargs)
    cur = c.cursor()
    cur.close()
    with pytest.raises(ambisql.ProgrammingError):
        cur.execute("SELECT 1")
    c.close()
    with pytest.raises(ambisql.InterfaceError):
        c.cursor()
    with pytest.raises(ambisql.InterfaceError):
        c.ping()
    with pytest.raises(ambisql.Error):
        c.close()
    assert not c.open


def test_init_command_and_sql_mode():
    c = ambisql.connect(**server_kwargs(init_command="SET @py_init = 7", sql_mode="ANSI_QUOTES"))
    cur = c.cursor()
    cur.execute("SELECT @py_init, @@sql_mode")
    v, mode = cur.fetchone()
    assert v == 7 and "ANSI_QUOTES" in mode
    c.close()


def test_ping_reconnect_after_kill(conn):
    admin = ambisql.connect(**server_kwargs(autocommit=True))
    admin.cursor().execute("KILL %s", (conn.thread_id(),))
    admin.close()
    with pytest.raises(ambisql.OperationalError) as e:
        conn.cursor().execute("SELECT 1")
    assert e.value.args[0] in (2006, 2013)
    assert conn.ping(reconnect=True)
    cur = conn.cursor()
    cur.execute("SELECT 2")
    assert cur.fetchone() == (2,)
    assert running("SELECT 1") == 0


def test_large_results_are_converted_while_they_arrive_and_come_out_whole(multi):
    conn = multi
    # Big buffered results are turned into tuples during the transfer (the module
    # overlaps the two); every row, every result set, and a failure after a big set.
    cur = conn.cursor()
    cur.execute("SELECT seq, CONCAT('row-', seq) FROM seq_1_to_200000")
    rows = cur.fetchall()
    assert len(rows) == 200000 and cur.rowcount == 200000
    assert rows[0] == (1, "row-1") and rows[123456] == (123457, "row-123457") and rows[-1] == (200000, "row-200000")
    cur.execute("SELECT seq FROM seq_1_to_150000; SELECT seq * 2 FROM seq_1_to_120000")
    first = cur.fetchall()
    assert cur.nextset()
    second = cur.fetchall()
    assert first == tuple((i,) for i in range(1, 150001))
    assert second == tuple((2 * i,) for i in range(1, 120001))
    with pytest.raises(ambisql.ProgrammingError):
        cur.execute("SELECT seq FROM seq_1_to_150000; SELECT * FROM no_such_table_for_this_test")
    cur.execute("SELECT 1")
    assert cur.fetchall() == ((1,),), "nothing of the failed query's rows leaks into the next result"


@pytest.mark.parametrize("driver", ["ambisql", "pymysql", "MySQLdb"])
def test_connection_level_last_statement_info_as_mysqldb_and_pymysql_give_it(driver, table):
    # conn.insert_id() / affected_rows() / warning_count() describe the connection's last
    # statement, whichever cursor ran it; conn.kill(thread_id) kills a connection. The
    # same assertions hold for the drivers code moves over from.
    import importlib
    kw = server_kwargs()
    if driver != "ambisql":
        kw.pop("ssl_mode")
        if driver == "MySQLdb":
            kw["passwd"], kw["db"] = kw.pop("password"), kw.pop("database")
    kw["autocommit"] = True  # (an open transaction would hold the table's DROP up)
    c = importlib.import_module(driver).connect(**kw)
    try:
        last_statement_info(c, table, importlib.import_module(driver).connect(**kw), driver)
    finally:
        c.close()


def last_statement_info(c, table, victim, driver):
    cur = c.cursor()
    cur.execute("CREATE TABLE " + table + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    cur.execute("INSERT INTO " + table + " (v) VALUES (1), (2), (3)")
    assert c.insert_id() == 1  # the first id of a multi-row INSERT, as LAST_INSERT_ID()
    assert c.affected_rows() == 3
    c.cursor().execute("INSERT INTO " + table + " (v) VALUES (4)")  # another cursor
    assert c.insert_id() == 4
    cur.execute("UPDATE " + table + " SET v = v + 1 WHERE v >= 3")
    assert c.affected_rows() == 2
    assert c.insert_id() == 0
    cur.execute("SELECT CAST('x' AS INT)")  # a truncation warning
    cur.fetchall()
    if driver != "pymysql":  # (MySQLdb's; PyMySQL has no warning_count())
        assert c.warning_count() == 1
    c.kill(victim.thread_id())
    with pytest.raises(Exception) as e:
        victim.cursor().execute("SELECT 1")
    assert e.value.args[0] in (2006, 2013), e.value


def test_the_exception_classes_hang_off_connections_and_cursors(conn):
    # PEP 249's optional extension on the connection; MySQLdb and PyMySQL have them on
    # cursors too.
    for holder in (conn, conn.cursor(), conn.cursor(ambisql.SSDictCursor)):
        for name in ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
                     "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"):
            assert getattr(holder, name) is getattr(ambisql, name), (holder, name)


def test_cursors_and_connections_refuse_copy_and_pickle_clearly(conn):
    # A cursor's state is C fields that a copy would not carry, and a connection is a live
    # socket: both refuse with a TypeError instead of giving a half-made object.
    import copy

    cur = conn.cursor()
    cur.execute("SELECT 1")
    for obj in (cur, conn):
        with pytest.raises(TypeError, match="pickle"):
            copy.copy(obj)
        with pytest.raises(TypeError, match="pickle"):
            pickle.dumps(obj)
    assert list(cur.fetchall()) == [(1,)]  # and both are as they were


def test_the_cursor_state_is_plain_attributes_to_python_code(conn):
    # Cursor's state and per-query methods are C (CursorBase); Python code (subclasses,
    # SQLAlchemy, the cursor's own general paths) reads, sets and deletes the same values.
    cur = conn.cursor()
    assert (cur.description, cur.rowcount, cur.lastrowid, cur.rownumber, cur.arraysize) == (None, -1, None, 0, 1)
    cur.arraysize = 3
    cur.execute("SELECT seq FROM seq_1_to_5")
    assert cur.fetchmany() == ((1,), (2,), (3,),) and cur.rownumber == 3
    assert cur.fetchall() == ((4,), (5,),) and cur.rownumber == 5
    cur.execute("SELECT seq FROM seq_1_to_4")
    cur.rownumber = 2  # (as scroll() does)
    assert cur.fetchall() == ((3,), (4,),)
    cur.rowcount = "anything"
    assert cur.rowcount == "anything"
    del cur.description
    with pytest.raises(AttributeError):
        cur.description
    assert cur.execute("SELECT 1 AS one") == 1 and cur.description[0][0] == "one" and cur.rowcount == 1
    cur.custom = 42  # (a subclass's own attributes)
    assert cur.custom == 42
    # A failed query leaves no result behind.
    with pytest.raises(ambisql.ProgrammingError):
        cur.execute("SELECT * FROM no_such_table_here")
    assert cur.description is None and cur.rowcount == -1 and cur.fetchall() == ()
    # Bytes queries, and arguments, take the general path and the same state.
    assert cur.execute(b"SELECT %s AS b", ("x",)) == 1 and cur.fetchall() == (("x",),)
    # The arguments by name, as MySQLdb and PyMySQL name them.
    assert cur.execute("SELECT %s", args=(7,)) == 1 and cur.fetchall() == ((7,),)
    assert cur.execute(query="SELECT %(v)s", args={"v": 8}) == 1 and cur.fetchall() == ((8,),)
    for bad in (lambda: cur.execute(), lambda: cur.execute("SELECT 1", (), ()), lambda: cur.execute("SELECT 1", sql="x"),
                lambda: cur.execute("SELECT 1", query="SELECT 2")):
        with pytest.raises(TypeError):
            bad()


def test_a_cursor_subclass_gets_its_own_rows_and_execute(conn):
    class Upper(ambisql.Cursor):
        def _make_all(self, rows):
            return [tuple(str(v).upper() for v in r) for r in rows]

    class Counting(ambisql.Cursor):
        calls = 0

        def execute(self, query, args=None):
            Counting.calls += 1
            return super().execute(query, args)

    cur = conn.cursor(Upper)
    cur.execute("SELECT 'a', 'b'")
    assert cur.fetchall() == [("A", "B")]  # (its own _make_all's list)
    cur = conn.cursor(Counting)
    assert cur.execute("SELECT 1") == 1 and Counting.calls == 1 and cur.fetchall() == ((1,),)
    cur = conn.cursor(ambisql.DictCursor)
    cur.execute("SELECT 1 AS a, 2 AS b")
    assert cur.fetchall() == [{"a": 1, "b": 2}]


def test_a_cursor_in_a_reference_cycle_is_collected(conn):
    import gc
    import weakref

    cur = conn.cursor()
    cur.execute("SELECT seq FROM seq_1_to_3")
    cur.me = cur
    cur._rows = cur._rows + (cur,)  # (its rows referring to it)
    ref = weakref.ref(cur)
    del cur
    gc.collect()
    assert ref() is None


def test_queries_through_the_cursor_leave_reference_counts_as_they_were(conn):
    # A reference kept or dropped too many per query (the C cursor's stores) shows as a
    # count that moves; memory would not show it for objects that live on anyway.
    import gc
    import sys

    cur = conn.cursor()
    q = "SELECT seq, 'x' FROM seq_1_to_3 WHERE seq > %s"
    a = (0,)
    watched = {"query": q, "args": a, "cursor": cur, "connection": conn, "_Conn": conn._c}

    def round_():
        cur.execute(q, a)
        cur.fetchall()
        cur.execute(q, args=a)
        cur.fetchone()
        cur.execute("DO 1")
        c = cur._quick_start(q, a)  # (ambisql.aio's two steps)
        c.wait()
        cur._quick_take(c)
        with pytest.raises(ambisql.ProgrammingError):
            cur.execute("SELECT * FROM no_such_table_here")

    round_()
    gc.collect()
    before = {k: sys.getrefcount(v) for k, v in watched.items()}
    for _ in range(300):
        round_()
    gc.collect()
    after = {k: sys.getrefcount(v) for k, v in watched.items()}
    assert after == before


def test_multi_statements_are_off_unless_asked_for_and_every_setting_is_honoured():
    # Review defect 3: connect() always asked for multi-statements, and a URL's
    # multi-statements=false or found-rows=true was overridden. Now off by default, as in
    # MySQLdb and PyMySQL; client_flag turns them on; a URL's settings stand.
    def probe(**kw):
        c = ambisql.connect(**kw)
        cur = c.cursor()
        try:
            cur.execute("SELECT 1; SELECT 2")
            multi = True
        except ambisql.ProgrammingError as e:
            assert e.args[0] == 1064
            multi = False
        cur.execute("SELECT 1")  # in step either way
        cur.execute("CREATE TEMPORARY TABLE fr (a INT)")
        cur.execute("INSERT INTO fr VALUES (1)")
        found = cur.execute("UPDATE fr SET a = 1")  # matched 1, changed 0
        c.close()
        return multi, found == 1
    assert probe(**server_kwargs()) == (False, False)
    assert probe(**server_kwargs(client_flag=CLIENT.MULTI_STATEMENTS | CLIENT.FOUND_ROWS)) == (True, True)
    url = "mysql://ambisql:%s@127.0.0.1:%s/ambisql_test?ssl-mode=disabled" % (
        os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), os.environ["AMBISQL_TEST_PORT"])
    assert probe(url=url) == (False, False)
    assert probe(url=url + "&multi-statements=true&found-rows=true") == (True, True)
    assert probe(url=url + "&multi-statements=false") == (False, False)
    assert probe(url=url + "&found-rows=1", client_flag=CLIENT.MULTI_STATEMENTS) == (True, True)


def test_with_connect_closes_and_commits_nothing(table):
    # Review defect 7: `with connect() as c:` committed on a clean exit; PyMySQL 1.x and
    # mysqlclient 2.x only close, and the server rolls back what was not committed.
    conn = ambisql.connect(**server_kwargs(autocommit=True))
    conn.cursor().execute("CREATE TABLE " + table + " (id INT PRIMARY KEY, v INT)")
    conn.close()
    with ambisql.connect(**server_kwargs()) as c:
        c.cursor().execute("INSERT INTO " + table + " (id, v) VALUES (901, 1)")
        assert c.in_transaction
    assert not c.open
    with pytest.raises(ZeroDivisionError):
        with ambisql.connect(**server_kwargs()) as c:
            c.cursor().execute("INSERT INTO " + table + " (id, v) VALUES (902, 1)")
            1 / 0
    assert not c.open
    with ambisql.connect(**server_kwargs()) as c:
        c.close()  # closed inside: the exit does not fail
    check = ambisql.connect(**server_kwargs())
    cur = check.cursor()
    cur.execute("SELECT COUNT(*) FROM " + table + " WHERE id IN (901, 902)")
    assert cur.fetchone() == (0,)
    check.close()


def test_cursor_surface_as_pymysql_has_it(table, conn):
    # Review defect 8 (part): PEP 249's setinputsizes / setoutputsize exist (and do
    # nothing); lastrowid after a SELECT is None, as PyMySQL's, not the last INSERT's id.
    cur = conn.cursor()
    cur.execute("CREATE TABLE " + table + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    assert cur.setinputsizes([10, None]) is None
    assert cur.setoutputsize(100) is None and cur.setoutputsize(100, 0) is None
    cur.execute("INSERT INTO " + table + " (v) VALUES (1)")
    assert cur.lastrowid > 0
    cur.execute("SELECT 1")
    assert cur.lastrowid is None
    cur.execute("UPDATE " + table + " SET v = 2")
    assert cur.lastrowid == 0


def test_executemany_insert_returning_runs_every_row_once(conn, table):
    # Review defect 5: INSERT ... RETURNING took the bulk path, which expects an OK:
    # OperationalError 2027, the connection lost, and the rows committed anyway. The core
    # reads the result set the server answers the bulk command with: every returned row.
    cur = conn.cursor()
    cur.execute("CREATE TABLE " + table + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    n = cur.executemany("INSERT INTO " + table + " (v) VALUES (%s) RETURNING id, v", [(10,), (20,), (30,)])
    assert n == 3 and cur.rowcount == 3
    assert cur.fetchall() == ((1, 10), (2, 20), (3, 30),)
    cur.executemany("INSERT INTO " + table + " (v) VALUES (%s) RETURNING v", [(40,), (50,)])
    assert cur.fetchall() == ((40,), (50,),)
    # Not only INSERTs go in one operation: an UPDATE's affected rows are summed.
    assert cur.executemany("UPDATE " + table + " SET v = v + 1 WHERE id = %s", [(1,), (2,), (99,)]) == 2
    cur.execute("SELECT COUNT(*), SUM(v) FROM " + table)
    assert cur.fetchone() == (5, 152)
    conn.commit()


def test_buffered_rows_are_tuples_and_unbuffered_lists_as_pymysql_gives_them(conn):
    # Review defect 8: fetchall() returned a list where PyMySQL and MySQLdb return a tuple.
    cur = conn.cursor()
    cur.execute("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
    assert cur.fetchmany(1) == ((1,),) and cur.fetchall() == ((2,), (3,))
    assert cur.fetchall() == () and cur.fetchmany() == ()
    cur.execute("DO 1")
    assert cur.fetchall() == ()
    cur.execute("SELECT seq FROM seq_1_to_100000")  # converted while it arrives: a tuple too
    assert type(cur.fetchall()) is tuple
    ss = conn.cursor(ambisql.SSCursor)
    ss.execute("SELECT 1 UNION ALL SELECT 2")
    assert ss.fetchmany(1) == [(1,)] and ss.fetchall() == [(2,)]
    ss.close()


def test_a_partly_read_unbuffered_result_is_drained_with_a_warning(conn):
    # Review defect 8: another cursor's execute or commit() raised ProgrammingError(0)
    # while an SSCursor's result was partly read; PyMySQL reads the rest and drops it,
    # with a warning.
    ss = conn.cursor(ambisql.SSCursor)
    ss.execute("SELECT seq FROM seq_1_to_20000")
    assert ss.fetchone() == (1,)
    other = conn.cursor()
    with pytest.warns(UserWarning, match="unbuffered result was left incomplete"):
        other.execute("SELECT 2")
    assert other.fetchall() == ((2,),)
    assert ss.fetchone() is None  # the rest was read and dropped
    ss.execute("SELECT seq FROM seq_1_to_20000")
    assert ss.fetchmany(2) == [(1,), (2,)]
    with pytest.warns(UserWarning):
        conn.commit()
    ss.execute("SELECT seq FROM seq_1_to_3")  # its own next query: no warning
    ss.fetchone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ss.execute("SELECT 1")
        assert ss.fetchall() == [(1,)]
        other.execute("SELECT 3")  # read to its end: nothing to drain
    assert other.fetchall() == ((3,),)


def test_executemany_is_all_or_nothing(conn, table):
    # Review defect 6: one outcome whatever the server: a failing row leaves none of the
    # rows applied (here the duplicate is in the last of several bulk batches, which were
    # each applied on their own before), and the caller's transaction goes on.
    cur = conn.cursor()
    cur.execute("CREATE TABLE " + table + " (id INT PRIMARY KEY, pad VARCHAR(2000))")
    cur.execute("INSERT INTO " + table + " VALUES (5, 'kept')")
    rows = [(i, "p" * 1900) for i in range(1000, 2000)] + [(5, "dup")]
    with pytest.raises(ambisql.IntegrityError):
        cur.executemany("INSERT INTO " + table + " VALUES (%s, %s)", rows)
    assert conn.in_transaction
    cur.execute("SELECT id FROM " + table)
    assert cur.fetchall() == ((5,),)
    assert cur.executemany("INSERT INTO " + table + " VALUES (%s, %s)", rows[:-1]) == 1000
    conn.commit()
    cur.execute("SELECT COUNT(*) FROM " + table)
    assert cur.fetchone() == (1001,)


def _statement_counts(c):
    cur = c.cursor()
    cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Com_commit', 'Com_rollback')")
    return {k: int(v) for k, v in cur.fetchall()}


def test_commit_and_rollback_with_no_transaction_open_cost_no_round_trip(conn, table):
    # The server's status says whether a transaction is open; with none, COMMIT and
    # ROLLBACK are no-ops and are not sent (counted by the server: Com_commit).
    conn.cursor().execute("CREATE TABLE %s (id INT PRIMARY KEY) ENGINE=InnoDB" % table)
    conn.commit()
    before = _statement_counts(conn)
    conn.commit()
    conn.rollback()
    assert _statement_counts(conn) == before
    conn.cursor().execute("SELECT * FROM " + table)  # begins one (autocommit off)
    conn.commit()
    after = _statement_counts(conn)
    assert after["Com_commit"] == before["Com_commit"] + 1


def test_after_a_failed_statement_rollback_is_sent_and_releases_its_locks(conn, table):
    # An ERR packet carries no status: a statement that failed may have begun a transaction
    # and kept locks (a duplicate key takes a shared lock on the row), although the last
    # OK said none was open. The core counts a transaction as open until the next OK.
    conn.cursor().execute("CREATE TABLE %s (id INT PRIMARY KEY, v INT) ENGINE=InnoDB" % table)
    conn.cursor().execute("INSERT INTO %s VALUES (1, 0)" % table)
    conn.commit()
    assert not conn._c.in_transaction
    with pytest.raises(ambisql.IntegrityError):
        conn.cursor().execute("INSERT INTO %s VALUES (1, 0)" % table)
    assert conn._c.in_transaction
    conn.rollback()
    assert not conn._c.in_transaction
    other = ambisql.connect(**server_kwargs(autocommit=True))
    other.cursor().execute("SET SESSION innodb_lock_wait_timeout = 1")
    other.cursor().execute("UPDATE %s SET v = 1 WHERE id = 1" % table)  # not held any more
    other.close()


def test_a_query_and_its_commit_go_together_when_no_transaction_is_open(conn, table):
    conn.cursor().execute("CREATE TABLE %s (id INT PRIMARY KEY) ENGINE=InnoDB" % table)
    conn.commit()
    cur = conn.cursor()
    before = _statement_counts(conn)
    assert cur._execute_and_commit("INSERT INTO " + table + " VALUES (%s), (%s)", (1, 2)) == 2
    assert not conn._c.in_transaction
    assert cur._execute_and_commit("SELECT id FROM " + table + " ORDER BY id") == 2
    assert cur.fetchall() == ((1,), (2,))
    with pytest.raises(ambisql.IntegrityError):  # the query's error; nothing of it committed
        cur._execute_and_commit("INSERT INTO " + table + " VALUES (3), (1)")
    assert _statement_counts(conn)["Com_commit"] == before["Com_commit"] + 3
    other = ambisql.connect(**server_kwargs(autocommit=True))
    oc = other.cursor()
    oc.execute("SELECT id FROM " + table + " ORDER BY id")
    assert oc.fetchall() == ((1,), (2,))
    other.close()
    # inside a transaction: one after the other, and a failure leaves it to roll back
    conn.cursor().execute("INSERT INTO " + table + " VALUES (5)")
    with pytest.raises(ambisql.IntegrityError):
        cur._execute_and_commit("INSERT INTO " + table + " VALUES (1)")
    conn.rollback()
    oc = ambisql.connect(**server_kwargs(autocommit=True)).cursor()
    oc.execute("SELECT COUNT(*) FROM " + table)
    assert oc.fetchone() == (2,)


def test_program_name_is_the_connection_attribute_monitoring_shows(kwargs):
    c = ambisql.connect(program_name="nova-api", **kwargs)
    cur = c.cursor()
    cur.execute("SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs"
                " WHERE PROCESSLIST_ID = CONNECTION_ID() AND ATTR_NAME = 'program_name'")
    assert [tuple(r) for r in cur.fetchall()] == [("nova-api",)]
    c.close()


def test_defer_connect_leaves_the_connect_to_connect(kwargs):
    c = ambisql.connect(defer_connect=True, **kwargs)
    with pytest.raises(ambisql.InterfaceError):
        c.cursor().execute("SELECT 1")
    c.connect()
    cur = c.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    c.close()
