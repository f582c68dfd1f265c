"""Every type both ways against the real server: parameters in, values out."""
import datetime as dt
import json
import os
from decimal import Decimal

import pytest

import ambisql
from ambisql.constants import FIELD_TYPE


def roundtrip(conn, sql_type, value):
    cur = conn.cursor()
    cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS py_types (v %s)" % sql_type)
    cur.execute("DELETE FROM py_types")
    cur.execute("INSERT INTO py_types VALUES (%s)", (value,))
    cur.execute("SELECT v FROM py_types")
    got = cur.fetchone()[0]
    p = conn.cursor(prepared=True)  # and through the binary protocol
    p.execute("SELECT v FROM py_types")
    got_binary = p.fetchone()[0]
    cur.execute("DROP TEMPORARY TABLE py_types")
    return got, got_binary


@pytest.mark.parametrize("sql_type,value", [
    ("BIGINT", -9223372036854775808),
    ("BIGINT UNSIGNED", 18446744073709551615),
    ("TINYINT", -128),
    ("INT", 0),
    ("DOUBLE", 1.25e300),
    ("DOUBLE", -0.1),
    ("DECIMAL(30,10)", Decimal("12345678901234567890.0123456789")),
    ("DECIMAL(5,2)", Decimal("-0.50")),
    ("VARCHAR(100)", "grüße, 你好, 🎉 'quoted' \\ back"),
    ("MEDIUMTEXT", "x" * 70000),
    ("VARBINARY(100)", bytes(range(256))[:100]),
    ("MEDIUMBLOB", bytes(range(256)) * 300),
    ("DATE", dt.date(2024, 2, 29)),
    ("DATETIME(6)", dt.datetime(1999, 12, 31, 23, 59, 59, 123456)),
    ("TIMESTAMP", dt.datetime(2038, 1, 19, 3, 14, 7)),
    ("TIME(6)", dt.timedelta(hours=-838, minutes=-59, seconds=-59)),
    ("TIME", dt.timedelta(hours=26, minutes=3, seconds=4)),
    ("YEAR", 2024),
    ("JSON", '{"a": [1, 2, "x"]}'),
    ("ENUM('a','b')", "b"),
])
def test_values_both_ways(conn, sql_type, value):
    got, got_binary = roundtrip(conn, sql_type, value)
    if sql_type == "JSON":
        assert json.loads(got) == json.loads(value) and isinstance(got, str)
    else:
        assert got == value, (sql_type, got)
        assert type(got) is type(value)
    assert got_binary == got


def test_parameter_kinds(conn):
    cur = conn.cursor()
    cur.execute("SELECT %s, %s, %s, %s, %s, %s, %s", (True, False, None, 1.5, Decimal("2.25"), bytearray(b"ab"),
                                                     memoryview(b"cd")))
    assert cur.fetchone() == (1, 0, None, 1.5, Decimal("2.25"), b"ab", b"cd")
    cur.execute("SELECT CAST(%s AS TIME(6)), CAST(%s AS TIME)",
                (dt.time(10, 11, 12, 5), dt.timedelta(days=-1, seconds=1)))
    assert cur.fetchone() == (dt.timedelta(hours=10, minutes=11, seconds=12, microseconds=5),
                              dt.timedelta(days=-1, seconds=1))
    cur.execute("SELECT %s", (10 ** 30,))
    assert cur.fetchone()[0] == Decimal(10 ** 30)


def test_a_float_parameter_is_a_double_on_the_server(conn):
    # As MySQLdb and PyMySQL send it: with an exponent (2.5e0), a DOUBLE literal. Without
    # one (2.5) the server reads an exact DECIMAL: the value came back as Decimal and
    # arithmetic on it was decimal (0.1 * 3 == 0.3, not the double 0.30000000000000004).
    cur = conn.cursor()
    assert cur.mogrify("SELECT %s, %s, %s", (2.5, 1e300, 3.0)) == "SELECT 2.5e0, 1e+300, 3e0"
    cur.execute("SELECT %s, %s * 3", (2.5, 0.1))
    got = cur.fetchone()
    assert [type(v) for v in got] == [float, float], got
    assert got == (2.5, 0.1 * 3)
    assert [d[1] for d in cur.description] == [FIELD_TYPE.DOUBLE] * 2


def test_a_decimal_parameter_is_exact_whatever_its_exponent(conn):
    # Sent in positional notation, as MySQLdb sends it: an exact literal (DECIMAL, or an
    # integer). str() gives an exponent for small and scaled values (1.23...E-7, 1E+3),
    # which the server read as a DOUBLE: the value came back as a float, rounded to 17
    # digits, and went into DECIMAL columns rounded so.
    small, scaled = Decimal("1.234567890123456789012345E-7"), Decimal("1E+3")
    cur = conn.cursor()
    assert cur.mogrify("SELECT %s, %s, %s", (small, scaled, Decimal("-0.00"))) == \
        "SELECT 0.0000001234567890123456789012345, 1000, -0.00"
    cur.execute("SELECT %s, %s", (small, scaled))
    got = cur.fetchone()
    assert got == (small, 1000) and [type(v) for v in got] == [Decimal, int], got
    cur.execute("CREATE TEMPORARY TABLE py_dec (v DECIMAL(40, 31))")
    cur.execute("INSERT INTO py_dec VALUES (%s)", (small,))
    p = conn.cursor(prepared=True)  # (sent as text there: the server converts it exactly)
    p.execute("INSERT INTO py_dec VALUES (%s)", (small,))
    cur.execute("SELECT v FROM py_dec")
    assert cur.fetchall() == ((small,), (small,),)
    cur.execute("DROP TEMPORARY TABLE py_dec")


def test_a_uuid_parameter_is_sent_as_its_text(conn):
    # As PyMySQL sends it (its str()); SQLAlchemy 2.1 passes uuid.UUID for Uuid columns. It
    # was a TypeError.
    import uuid

    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    cur = conn.cursor()
    cur.execute("SELECT %s, CAST(%s AS UUID) = %s", (u, u, str(u)))
    assert cur.fetchone() == (str(u), 1)
    pcur = conn.cursor(prepared=True)
    pcur.execute("SELECT %s", (u,))
    assert pcur.fetchone() == (str(u),)


def test_use_unicode_false_gives_text_as_bytes():
    # As MySQLdb and PyMySQL do: text values undecoded, in the connection's character set;
    # numbers, dates and parameters as ever. It was accepted and ignored (str came back).
    kw = dict(unix_socket=os.environ["AMBISQL_TEST_SOCKET"], user="ambisql",
              password=os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), database="ambisql_test")
    for charset, e_acute in (("utf8mb4", b"\xc3\xa9"), ("latin1", b"\xe9")):
        c = ambisql.connect(use_unicode=False, charset=charset, **kw)
        cur = c.cursor()
        cur.execute("SELECT %s, 'x', JSON_OBJECT('a', 1), 2, CAST('2024-01-02' AS DATE), NULL", ("\u00e9",))
        assert cur.fetchone() == (e_acute, b"x", b'{"a": 1}', 2, dt.date(2024, 1, 2), None)
        assert isinstance(cur.description[0][0], str)  # (names stay str)
        for other in (c.cursor(prepared=True), c.cursor(ambisql.SSCursor)):  # every result path
            other.execute("SELECT %s", ("\u00e9",))
            assert list(other.fetchall()) == [(e_acute,)]
            other.close()
        c.close()
    c = ambisql.connect(**kw)  # and the default is str
    cur = c.cursor()
    cur.execute("SELECT 'x'")
    assert cur.fetchone() == ("x",)
    c.close()


def test_zero_and_invalid_dates_are_none(conn):
    cur = conn.cursor()
    cur.execute("SET SESSION sql_mode = ''")
    cur.execute("SELECT CAST('0000-00-00' AS DATE), CAST('0000-00-00 00:00:00' AS DATETIME)")
    assert cur.fetchone() == (None, None)


def test_bit_and_null(conn):
    cur = conn.cursor()
    cur.execute("SELECT b'101', NULL")
    assert cur.fetchone() == (b"\x05", None)


def test_other_character_sets():
    from conftest import server_kwargs
    c = ambisql.connect(**server_kwargs(charset="latin1"))
    cur = c.cursor()
    cur.execute("SELECT %s, @@character_set_client", ("café",))
    assert cur.fetchone() == ("café", "latin1")
    c.close()


def test_wrong_parameters_are_clear_errors(conn):
    cur = conn.cursor()
    with pytest.raises(TypeError):
        cur.execute("SELECT %s", (object(),))
    with pytest.raises(TypeError):
        cur.execute("SELECT %s, %s", (1,))
    with pytest.raises(TypeError):
        cur.execute("SELECT %s", (1, 2))
    with pytest.raises(ValueError):
        cur.execute("SELECT %d", (1,))
    with pytest.raises(ValueError):
        cur.execute("SELECT %s", (float("nan"),))
    # beyond what a TIME holds (its microseconds overflowed int64)
    for td in (dt.timedelta(days=999999999), dt.timedelta(days=-999999999), dt.timedelta.max):
        for c in (cur, conn.cursor(prepared=True)):
            with pytest.raises(ValueError):
                c.execute("SELECT %s", (td,))
    cur.execute("SELECT 'still fine'")
    assert cur.fetchone() == ("still fine",)


HOSTILE_PARAMETERS = r"""
import decimal, json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import ambisql
from conftest import server_kwargs

cur = ambisql.connect(**server_kwargs()).cursor()
out = {}
loop = []
loop.append(loop)  # a list that contains itself
try:
    cur.execute("SELECT 1 IN %s", (loop,))
    out["loop"] = "ran"
except RecursionError:
    out["loop"] = "RecursionError"
deep = 1
for _ in range(100000):
    deep = [deep]
try:
    cur.execute("SELECT 1 IN %s", (deep,))
    out["deep"] = "ran"
except RecursionError:
    out["deep"] = "RecursionError"

class Evil(int):  # its __str__ is not its value
    def __str__(self):
        return "0) OR (1"

cur.execute("SELECT %s", (Evil(2 ** 70),))
out["evil_int"] = str(cur.fetchone()[0])

params = []

class Clearing(decimal.Decimal):  # empties the parameter list while it is formatted
    def __str__(self):
        params.clear()
        return "7"

params.extend([Clearing(7), "x" * 100, 3])
cur.execute("SELECT %s, %s, %s", params)
out["clearing"] = [str(v) for v in cur.fetchone()]
cur.execute("SELECT 'still fine'")
out["after"] = cur.fetchone()[0]
print(json.dumps(out))
"""


def test_hostile_parameters_are_errors_or_values_never_a_crash():
    # A list that contains itself, or nesting 100,000 deep, used to run the C stack out
    # (a segmentation fault); an int subclass's __str__ went into the SQL for big values; a
    # list changed by a value's __str__ while formatted was read past its end.
    import subprocess
    import sys
    here = os.path.abspath(__file__)
    p = subprocess.run([sys.executable, "-c", HOSTILE_PARAMETERS, here], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["loop"] == "RecursionError" and r["deep"] == "RecursionError", r
    assert r["evil_int"] == str(2 ** 70), r
    assert r["clearing"] == ["7", "x" * 100, "3"], r
    assert r["after"] == "still fine"


def test_rows_of_plain_values_are_left_to_reference_counting(conn):
    # A row tuple holds ints, strs, Decimals, dates...: it can be in no reference cycle, so
    # it is untracked by the garbage collector at once (a 100k-row fetchall then does not
    # pay for the collections its allocations trigger); buffered and prepared alike.
    import gc

    sql = "SELECT 1, 'a', 1.5, CAST(2.25 AS DECIMAL(6,2)), NOW(), CURDATE(), NULL, X'00ff'"
    for cur in (conn.cursor(), conn.cursor(prepared=True)):
        cur.execute(sql)
        row = cur.fetchone()
        assert row[0] == 1 and row[1] == "a" and row[6] is None
        assert not gc.is_tracked(row)
        assert gc.is_tracked((row, []))  # (a tuple with a list in it is tracked)
