"""Database.transaction: writes wait for the next read or the COMMIT, and all of it is one
transaction (nothing half-done on an error)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "t.sqlite3")
    await database.conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    yield database
    await database.close()


def count_trips(db: Database) -> list[int]:
    """Calls to aiosqlite's thread, counted from here on."""
    trips = [0]
    conn = db.conn
    execute = conn._execute

    async def counted(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips[0] += 1
        return await execute(fn, *args, **kwargs)

    conn._execute = counted  # type: ignore[method-assign]
    return trips


async def values(db: Database) -> list[str]:
    return [r[0] for r in await db.all("SELECT v FROM t ORDER BY id")]


async def test_writes_and_commit_go_in_one_trip(db: Database) -> None:
    trips = count_trips(db)
    async with db.transaction() as tx:
        tx.add("INSERT INTO t(v) VALUES(?)", ("a",))
        tx.add_many("INSERT INTO t(v) VALUES(?)", [("b",), ("c",)])
    assert trips[0] == 1  # BEGIN, three inserts, COMMIT
    assert await values(db) == ["a", "b", "c"]


async def test_a_read_sees_the_writes_before_it_and_travels_with_them(db: Database) -> None:
    trips = count_trips(db)
    async with db.transaction() as tx:
        tx.add("INSERT INTO t(v) VALUES(?)", ("a",))
        row = await tx.one("SELECT COUNT(*) FROM t")
        assert row is not None and row[0] == 1
        result = await tx.execute("INSERT INTO t(v) VALUES(?)", ("b",))
        assert result.lastrowid == 2 and result.rowcount == 1
        rows = await tx.commit("SELECT v FROM t ORDER BY id")  # read after the commit, same trip
    assert [r[0] for r in rows] == ["a", "b"]
    assert trips[0] == 3


async def test_an_error_in_the_block_undoes_the_writes_already_sent(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            tx.add("INSERT INTO t(v) VALUES(?)", ("a",))
            await tx.one("SELECT 1")  # the insert has gone to the database, uncommitted
            raise RuntimeError("refused")
    assert await values(db) == []
    assert not await db.in_thread(lambda conn: conn.in_transaction)


async def test_a_failing_write_at_commit_undoes_the_whole_transaction(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as tx:
            tx.add("INSERT INTO t(v) VALUES(?)", ("a",))
            tx.add("INSERT INTO t(v) VALUES(?)", ("a",))  # UNIQUE: fails with the COMMIT's trip
    assert await values(db) == []
    async with db.transaction() as tx:  # the connection is usable again
        tx.add("INSERT INTO t(v) VALUES(?)", ("b",))
    assert await values(db) == ["b"]


async def test_python_runs_in_turn_with_the_writes_in_the_same_trip(db: Database) -> None:
    """``Tx.call``: code that reads what the transaction wrote before it and writes after it (the
    audit chain), without a trip of its own; failing, it undoes the whole transaction."""
    def copy_count(conn: sqlite3.Connection) -> None:
        n = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        conn.execute("INSERT INTO t(v) VALUES(?)", (f"after {n}",))

    trips = count_trips(db)
    async with db.transaction() as tx:
        tx.add("INSERT INTO t(v) VALUES(?)", ("a",))
        tx.call(copy_count)
        tx.add("INSERT INTO t(v) VALUES(?)", ("b",))
    assert trips[0] == 1
    assert await values(db) == ["a", "after 1", "b"]

    def fail(conn: sqlite3.Connection) -> None:
        raise sqlite3.IntegrityError("refused")

    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as tx:
            tx.add("INSERT INTO t(v) VALUES(?)", ("c",))
            tx.call(fail)
    assert await values(db) == ["a", "after 1", "b"]


async def test_a_transaction_that_does_nothing_costs_nothing(db: Database) -> None:
    trips = count_trips(db)
    async with db.transaction():
        pass
    with pytest.raises(ValueError):
        async with db.transaction():
            raise ValueError("bad input")
    assert trips[0] == 0


async def test_nothing_may_follow_the_commit(db: Database) -> None:
    with pytest.raises(RuntimeError, match="over"):
        async with db.transaction() as tx:
            tx.add("INSERT INTO t(v) VALUES(?)", ("a",))
            await tx.commit()
            await tx.one("SELECT 1")
    assert await values(db) == ["a"]  # committed before the mistake


async def test_batch_reads_in_one_trip(db: Database) -> None:
    async with db.transaction() as tx:
        tx.add_many("INSERT INTO t(v) VALUES(?)", [("a",), ("b",)])
    trips = count_trips(db)
    first, second = await db.batch(("SELECT v FROM t WHERE id = ?", (1,)), ("SELECT COUNT(*) FROM t", ()))
    assert [r[0] for r in first] == ["a"] and second[0][0] == 2
    assert trips[0] == 1
