"""Backups on PostgreSQL: ``casebot backup`` writes a checked pg_dump of the bot's schema while
the bot runs, and ``casebot restore`` puts it back in one transaction: the cases, the history and
the audit chain as they were."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from bot import audit, cli
from bot.db import Database
from tests import pgtest
from tests.conftest import Clock, Domain, cli_config

pytestmark = pytest.mark.skipif(not pgtest.enabled(), reason=f"needs PostgreSQL ({pgtest.ENV})")


async def count(db: Database, table: str) -> int:
    row = await db.one(f"SELECT COUNT(*) FROM {table}")
    assert row is not None
    return int(row[0])


async def test_a_dump_taken_while_running_restores_what_was_there(
        domain: Domain, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        await domain.new_case(clock)
    config = cli_config(domain, tmp_path)
    dest = tmp_path / "backups" / "casebot.dump"
    dest.parent.mkdir()
    code = await asyncio.to_thread(cli.main, ["backup", "--config", str(config), str(dest)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "backup written" in out.out and "pg_dump" in out.out
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert not [p for p in dest.parent.iterdir() if p.name.endswith(".tmp")]
    events = await count(domain.db, "events")

    await domain.new_case(clock)  # after the backup
    assert await count(domain.db, "cases") == 4
    await domain.db.close()

    code = await asyncio.to_thread(cli.main, ["restore", "--force", "--config", str(config), str(dest)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "restored" in out.out
    db = await Database.open(domain.settings.database)
    try:
        assert await count(db, "cases") == 3 and await count(db, "events") == events
        assert await audit.verify(db) == []
        async with db.transaction() as tx:  # the identities go on after the restored rows
            result = await tx.execute(
                "INSERT INTO refusals(at, tg_id, action) VALUES('2026-11-02T02:00:00+00:00', 1, 'x')")
            assert result.lastrowid is not None
    finally:
        await db.close()


async def test_a_file_that_is_no_dump_is_refused_and_changes_nothing(
        domain: Domain, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await domain.new_case(clock)
    config = cli_config(domain, tmp_path)
    bogus = tmp_path / "bogus.dump"
    bogus.write_bytes(b"not a dump")
    code = await asyncio.to_thread(cli.main, ["restore", "--force", "--config", str(config), str(bogus)])
    assert code == 1 and "not a readable dump" in capsys.readouterr().err
    assert await count(domain.db, "cases") == 1
    code = await asyncio.to_thread(cli.main, ["restore", "--force", "--config", str(config),
                                              str(tmp_path / "none.dump")])
    assert code == 2 and "no backup at" in capsys.readouterr().err
