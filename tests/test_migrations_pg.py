"""The two migration sets (bot/migrations for SQLite, bot/migrations_pg for PostgreSQL) have the
same numbers and build the same tables and columns; every PostgreSQL migration runs on an empty
database, one at a time, and on one holding data; a failing migration leaves nothing behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import bot.db as dbmod
from bot import audit
from bot.db import Database, migrations
from tests import pgtest

needs_pg = pytest.mark.skipif(not pgtest.enabled(), reason=f"needs PostgreSQL ({pgtest.ENV})")


def test_both_stores_have_the_same_migration_numbers() -> None:
    sqlite_numbers = [n for n, _ in migrations(dbmod.SQLITE)]
    pg_numbers = [n for n, _ in migrations(dbmod.POSTGRESQL)]
    assert sqlite_numbers == pg_numbers and sqlite_numbers[0] == 1
    # A Python migration has a Python twin (both run the same code on the rows already there).
    for (n, a), (_n, b) in zip(migrations(dbmod.SQLITE), migrations(dbmod.POSTGRESQL), strict=True):
        assert a.startswith(dbmod.PYTHON_MIGRATION) == b.startswith(dbmod.PYTHON_MIGRATION), n


def sqlite_schema(path: Path) -> tuple[dict[str, dict[str, bool]], set[str]]:
    """Each table's columns (name: NOT NULL), and the triggers' names."""
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        out = {t: {r[1]: bool(r[3]) or bool(r[5]) for r in con.execute(f"PRAGMA table_info({t})")}
               for t in tables}
        triggers = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    finally:
        con.close()
    return out, triggers


def pg_schema(url: str) -> tuple[dict[str, dict[str, bool]], set[str]]:
    from bot.pg import PgConnection

    con = PgConnection.connect(url)
    try:
        out: dict[str, dict[str, bool]] = {}
        for table, column, nullable in con.raw.execute(
                "SELECT table_name, column_name, is_nullable FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name <> 'schema_version'"):
            out.setdefault(str(table), {})[str(column)] = nullable == "NO"
        triggers = {str(r[0]) for r in con.raw.execute(
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND NOT t.tgisinternal")}
    finally:
        con.close()
    return out, triggers


@needs_pg
async def test_both_stores_make_the_same_tables_and_columns(tmp_path: Path) -> None:
    lite = tmp_path / "lite.sqlite3"
    db = await pgtest.open_file(Database, lite)  # type: ignore[misc]  # SQLite itself
    await db.close()
    url = pgtest.url_for(tmp_path / "pg")
    db = await Database.open(url)
    await db.close()
    lite_tables, lite_triggers = sqlite_schema(lite)
    pg_tables, pg_triggers = pg_schema(url)
    assert sorted(pg_tables) == sorted(lite_tables)
    for table, columns in lite_tables.items():
        assert list(pg_tables[table]) == list(columns) or sorted(pg_tables[table]) == sorted(columns), table
        assert pg_tables[table] == columns, table  # the same NOT NULLs
    # Every SQLite trigger has its twin (PostgreSQL also refuses TRUNCATE of the append-only tables).
    assert lite_triggers <= pg_triggers
    assert {t for t in pg_triggers - lite_triggers if not t.endswith("_no_truncate")} == set()


@needs_pg
async def test_every_migration_runs_one_at_a_time_on_an_empty_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    every = migrations(dbmod.POSTGRESQL)
    url = pgtest.url_for(tmp_path / "steps")
    for k in range(1, len(every) + 1):
        monkeypatch.setattr(dbmod, "migrations", lambda *_store, k=k: every[:k])
        db = await Database.open(url)
        try:
            assert await db.schema_version() == k
            tracked = await db.all("SELECT version FROM schema_version ORDER BY version")
            assert [r[0] for r in tracked] == list(range(1, k + 1))
        finally:
            await db.close()
    monkeypatch.setattr(dbmod, "migrations", lambda *_store: every)
    db = await Database.open(url)  # nothing left to apply: opens as it is
    try:
        assert await db.schema_version() == len(every)
        assert await audit.verify(db) == []
    finally:
        await db.close()


@needs_pg
async def test_a_failing_migration_leaves_nothing_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    every = migrations(dbmod.POSTGRESQL)
    broken = (len(every) + 1, "CREATE TABLE half_done(id BIGINT);\nSELECT no_such_function();")
    monkeypatch.setattr(dbmod, "migrations", lambda *_store: [*every, broken])
    url = pgtest.url_for(tmp_path / "broken")
    with pytest.raises(Exception, match="no_such_function"):
        await Database.open(url)
    monkeypatch.setattr(dbmod, "migrations", lambda *_store: every)
    db = await Database.open(url)
    try:
        assert await db.schema_version() == len(every)
        assert await db.one("SELECT 1 FROM pg_tables WHERE tablename = 'half_done'"
                            " AND schemaname = current_schema()") is None
    finally:
        await db.close()


class Undo(Exception):
    pass


AT = "2026-10-01T02:00:00+00:00"
# Rows of every kind the first migrations know, written at version 2.
ROWS: list[tuple[str, tuple[Any, ...]]] = [
    ("INSERT INTO units(key, name, kind) VALUES('pp', 'Phnom Penh', 'province')", ()),
    ("INSERT INTO units(key, name, kind, parent_id) VALUES('pp-dp', 'Daun Penh', 'district', 1)", ()),
    ("INSERT INTO categories(key, name) VALUES('land', 'Land')", ()),
    ("INSERT INTO people(tg_id, name, username, first_seen, last_seen) VALUES(2001, 'Dara', 'dara', ?, ?)",
     (AT, AT)),
    ("INSERT INTO cases(status, source, received_at, created_at, updated_at, category_id,"
     " place_unit_id, unit_id, summary, citizen_name, created_by) VALUES('assigned', 'phone', ?, ?, ?,"
     " 1, 2, 2, 'Road', 'Sok Dara', 1002)", (AT, AT, AT)),
    ("INSERT INTO events(case_id, at, actor_id, actor_name, action, to_status, note, data)"
     " VALUES(1, ?, 1002, 'Sophea', 'create', 'new', '', '{}')", (AT,)),
    ("INSERT INTO events(case_id, at, actor_id, actor_name, action, from_status, to_status, note, data)"
     " VALUES(1, ?, 1002, 'Sophea', 'assign', 'new', 'assigned', 'Please look', '{\"unit\": 2}')", (AT,)),
    ("INSERT INTO outbox(created_at, kind, chat_id, case_id, text, next_attempt_at)"
     " VALUES(?, 'text', -100100, 1, 'hello', ?)", (AT, AT)),
    ("INSERT INTO case_cards(case_id, chat_id, message_id, unit_id, posted_at) VALUES(1, -100100, 7, 2, ?)",
     (AT,)),
    ("INSERT INTO chat_bindings(unit_id, chat_id, bound_by, bound_at) VALUES(2, -100101, 1001, ?)", (AT,)),
    ("INSERT INTO settings_kv(key, value) VALUES('wg_chat_id', '-100900')", ()),
    ("INSERT INTO grants(tg_id, role, unit_id, source, granted_at) VALUES(2001, 'official', 2, 'invitation', ?)",
     (AT,)),
    ("INSERT INTO invitations(token_hash, role, unit_id, created_by, created_at, expires_at)"
     " VALUES('h', 'official', 2, 1001, ?, ?)", (AT, AT)),
    ("INSERT INTO refusals(at, tg_id, action, case_id) VALUES(?, 3001, 'assign', 1)", (AT,)),
]


@needs_pg
async def test_the_migrations_carry_a_database_holding_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    every = migrations(dbmod.POSTGRESQL)
    url = pgtest.url_for(tmp_path / "data")
    monkeypatch.setattr(dbmod, "migrations", lambda *_store: every[:2])
    db = await Database.open(url)
    for sql, params in ROWS:
        await db.write(sql, params)
    await db.close()

    monkeypatch.setattr(dbmod, "migrations", lambda *_store: every)
    db = await Database.open(url)
    try:
        assert await db.schema_version() == len(every)
        problems, summary = await audit.check(db)
        assert problems == [] and summary.events == 2 and summary.texts == 1
        assert summary.rows == 4  # a grant, an invitation, a binding, the working group's chat
        for table, n in [("units", 2), ("cases", 1), ("events", 2), ("outbox", 1), ("case_cards", 1),
                         ("grants", 1), ("invitations", 1), ("refusals", 1), ("people", 1)]:
            row = await db.one(f"SELECT COUNT(*) FROM {table}")
            assert row is not None and row[0] == n, table
        assert (await db.one("SELECT text FROM event_texts"))[0] == "Please look"  # type: ignore[index]
        # The events' identity goes on after the rows carried over (then undone: the chain holds).
        with pytest.raises(Undo):
            async with db.transaction() as tx:
                result = await tx.execute(
                    "INSERT INTO events(case_id, at, actor_id, actor_name, action, data, seq, case_prev,"
                    " prev, hash) VALUES(1, ?, 1, 'x', 'note', '{}', 999, '', '', '')", (AT,))
                assert result.lastrowid == 3
                raise Undo()
        assert await audit.verify(db) == []
    finally:
        await db.close()


def test_the_twins_without_triggers_are_what_scripts_pg_twin_writes() -> None:
    """The rules of bot/migrations_pg/__init__.py, as scripts/pg-twin applies them, give the
    twins checked here on a server; a migration with a trigger is left to hands."""
    from importlib import resources

    from bot.migrations_pg import NeedsHands, twin

    lite = resources.files("bot.migrations")
    pg_dir = resources.files("bot.migrations_pg")
    done = 0
    for entry in sorted(lite.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        if "CREATE TRIGGER" in text or entry.name.startswith("0001"):
            with pytest.raises(NeedsHands):
                twin(entry.name, text)
            continue
        assert twin(entry.name, text) == pg_dir.joinpath(entry.name).read_text(encoding="utf-8"), entry.name
        done += 1
    assert done >= 8
