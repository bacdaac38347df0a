"""bot/pgsql.py: SQLite-dialect SQL as PostgreSQL runs it (no server needed; the suite's
PostgreSQL run executes all of the bot's SQL through it)."""

from __future__ import annotations

import pytest

from bot.pgsql import Table, translate

TABLES = {"case_cards": Table(("chat_id", "message_id"), False), "cases": Table(("id",), True),
          "digest_log": Table(("chat_id", "day"), False)}


def pg(sql: str, params: bool = True) -> str:
    return translate(sql, TABLES, params).sql


def test_placeholders_and_percent_signs() -> None:
    assert pg("SELECT * FROM t WHERE a = ? AND b LIKE '%x?' AND c = ?") == (
        "SELECT * FROM t WHERE a = %s AND b ILIKE '%%x?' AND c = %s")
    assert pg("SELECT '50%'", params=False) == "SELECT '50%'"  # no parameters: as it is


def test_or_ignore_and_or_replace() -> None:
    assert pg("INSERT OR IGNORE INTO digest_log(chat_id, day) VALUES(?, ?)") == (
        "INSERT INTO digest_log(chat_id, day) VALUES(%s, %s) ON CONFLICT DO NOTHING")
    assert pg("INSERT OR REPLACE INTO case_cards(case_id, chat_id, message_id) VALUES(?,?,?)") == (
        "INSERT INTO case_cards(case_id, chat_id, message_id) VALUES(%s,%s,%s)"
        " ON CONFLICT (chat_id, message_id) DO UPDATE SET case_id = EXCLUDED.case_id")
    with pytest.raises(ValueError, match="primary key"):
        pg("INSERT OR REPLACE INTO unknown(a) VALUES(?)")


def test_lastrowid_comes_from_returning_id() -> None:
    st = translate("INSERT INTO cases(status) VALUES(?)", TABLES)
    assert st.returns_id and st.sql.endswith(" RETURNING id")
    assert not translate("INSERT INTO cases(status) VALUES(?) RETURNING status", TABLES).returns_id
    assert not translate("INSERT INTO digest_log(chat_id, day) VALUES(?, ?)", TABLES).returns_id


def test_hints_functions_and_casts() -> None:
    assert pg("SELECT * FROM outbox o INDEXED BY outbox_pending WHERE IFNULL(a, 0) = 1") == (
        "SELECT * FROM outbox o  WHERE COALESCE(a, 0) = 1")
    assert pg("SELECT MAX(a, b), MAX(c), MIN(x, y, z) FROM t") == (
        "SELECT GREATEST(a, b), MAX(c), LEAST(x, y, z) FROM t")
    assert pg("SELECT CAST(value AS INTEGER) FROM json_each(?)") == (
        "SELECT CAST(value AS BIGINT) FROM jsonb_array_elements_text(CAST(%s AS jsonb))")


def test_json_paths() -> None:
    assert pg("SELECT json_extract(data, '$.due'), json_type(e.data, '$.a.b') IS NOT NULL FROM events e") == (
        "SELECT (CAST(data AS jsonb) #> '{due}'), jsonb_typeof(CAST(e.data AS jsonb) #> '{a,b}')"
        " IS NOT NULL FROM events e")
    assert pg("SELECT json_group_array(json_array(c.name, c.contact)) FROM c") == (
        "SELECT CAST(COALESCE(json_agg(json_build_array(c.name, c.contact)), CAST('[]' AS json)) AS TEXT)"
        " FROM c")
    with pytest.raises(ValueError, match="only"):
        pg("SELECT json_extract(data, '$[0]') FROM t")


def test_literals_and_comments_are_left_alone() -> None:
    assert pg("SELECT 'IFNULL(x) LIKE INDEXED BY y' -- a ? comment\n FROM t WHERE a = ?") == (
        "SELECT 'IFNULL(x) LIKE INDEXED BY y'  \n FROM t WHERE a = %s")
