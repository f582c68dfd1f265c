"""The character set in force, as the core knows it: parameters are escaped for it,
character by character in multibyte sets, and never by a guess."""
import pytest

import ambisql

from conftest import socket_kwargs

ATTACK = "\u4e2d' OR 1=1 -- "  # GBK d6d0, a quote, a tautology


def test_a_charset_the_server_does_not_report_is_never_guessed():
    # The review's injection: with character_set_client left out of what the server
    # reports, SET NAMES gbk went unnoticed; the core escaped by UTF-8 rules while the
    # server read GBK, and the WHERE clause matched every row.
    c = ambisql.connect(**socket_kwargs())
    cur = c.cursor()
    cur.execute("CREATE TEMPORARY TABLE u (name VARCHAR(20)) CHARACTER SET utf8mb4")
    cur.execute("INSERT INTO u VALUES ('alice'), ('bob')")
    cur.execute("SET SESSION session_track_system_variables=''")
    cur.execute("SET NAMES gbk")
    with pytest.raises(ambisql.ProgrammingError, match="character set in force is not known"):
        cur.execute("SELECT * FROM u WHERE name=%s", (ATTACK,))
    with pytest.raises(ambisql.ProgrammingError):
        c.literal(ATTACK)
    # Through the driver's own API the change is known whatever the server reports.
    c.set_character_set("gbk")
    assert c.character_set_name() == "gbk"
    cur.execute("SELECT * FROM u WHERE name=%s", (ATTACK,))
    assert len(cur.fetchall()) == 0
    # Where nothing reports it, any statement may change it again (a stored routine, a
    # prepared SET): unknown after each, until set through the driver again.
    with pytest.raises(ambisql.ProgrammingError):
        cur.execute("SELECT %s", (ATTACK,))
    # The connection is as usable as before, and a reset makes the server report it again.
    c.reset_connection()
    cur.execute("SET NAMES gbk")
    assert c.character_set_name() == "gbk"
    cur.execute("SELECT %s", (ATTACK,))
    assert cur.fetchone() == (ATTACK,)
    c.close()


@pytest.mark.parametrize("charset,codec,text", [
    ("gbk", "gbk", "\u4e57'\\\u4fd3\" OR 1=1 -- "),    # 乗 0x815C, 俓 0x825C
    ("big5", "big5", "\u4e48'\\ OR 1=1 -- "),          # 么 0xA45C
    ("sjis", "shift_jis", "\u30bd'\\\u4e88 -- "),      # ソ 0x835C, 予 0x975C
    ("cp932", "cp932", "\u30bd\\'\u4e88"),
    ("gb2312", "gb2312", "\u554a'\\\u554a"),           # (no trailing 0x5C in EUC-CN)
])
def test_multibyte_charsets_bind_text_with_trailing_backslashes(charset, codec, text):
    # These character sets could not bind any str before (a bare ValueError); PyMySQL can.
    c = ambisql.connect(**socket_kwargs(charset=charset))
    assert c.character_set_name() == charset
    cur = c.cursor()
    cur.execute("SELECT %s, HEX(%s)", (text, text))
    assert cur.fetchone() == (text, text.encode(codec).hex().upper())
    assert c.literal(text).startswith("'")
    cur.execute("SELECT %(a)s = %(a)s", {"a": text})
    assert cur.fetchone() == (1,)
    c.close()


def test_bad_character_set_names_are_refused_by_the_core():
    c = ambisql.connect(**socket_kwargs())
    for bad in ("utf8mb4; DROP TABLE x", "nosuchset", ""):
        with pytest.raises(ambisql.ProgrammingError):
            c.set_character_set(bad)
    with pytest.raises(ambisql.ProgrammingError):
        c.set_character_set("latin1", "x' OR 1")
    c.set_character_set("latin1", "latin1_general_cs")
    assert c.character_set_name() == "latin1"
    c.close()
