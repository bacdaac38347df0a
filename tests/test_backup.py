"""Backups that restore: ``casebot backup`` during a stream of writes, ``casebot restore``, the
checks, and the daily backup from the job queue (pruning, and the admins told of a failure)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import backup as backup_mod
from bot import cli
from bot.app import Services
from bot.backup import BackupFailed, backup, check, expected_version, restore
from bot.config import DEFAULT_CONFIG_ENV, ConfigError, load_settings, parse_settings
from bot.db import Database
from bot.domain.cases import Actor, Change, Draft
from bot.domain.rules import Action
from bot.health import Heartbeat, heartbeat_path
from bot.jobs.backup import run_due, schedule
from tests.conftest import ADMIN, WG, WG_CHAT, Clock, Domain, config_dict
from tests.harness import running_bot

pytestmark = pytest.mark.sqlite_only("SQLite's online backup API and its file checks (PostgreSQL's backups: tests/test_pgbackup.py)")

REPO_ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEFAULT_CONFIG_ENV, raising=False)


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def notes_in(path: Path) -> list[str]:
    return [str(r[0]) for r in rows(
        path, "SELECT t.text FROM events e JOIN event_texts t ON t.event_id = e.id"
        " WHERE e.action = 'note' ORDER BY e.id")]


def corrupt(path: Path) -> None:
    """Overwrite the head of an index's root page: a damage only a check finds (the copy reads
    pages without looking into them)."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events_case'").fetchone()[0]
    conn.close()
    with path.open("r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * 64)


async def draft(services: Services) -> Draft:
    land = next(c.id for c in await services.units.categories() if c.key == "land")
    return Draft(source="phone", category_id=land, place_unit_id=(await services.units.by_key("pp-dp")).id,
                 summary="Boundary dispute", description="", citizen_name="Sok Dara")


async def make_database(path: Path) -> None:
    db = await Database.open(path)
    await db.close()


# --- a backup during a stream of writes, restored ------------------------------------------------


async def test_a_backup_during_a_stream_of_writes_restores_everything_committed_before_it(
    domain: Domain, clock: Clock, tmp_path: Path,
) -> None:
    """Notes go on being added through the domain while backups are taken; each backup, restored,
    passes the checks and holds every note committed before it began, and of the notes committed
    while it ran, only whole ones and in order (the database at one moment)."""
    cases = [await domain.new_case(clock) for _ in range(2)]
    wg = Actor(WG, "Wg Member", WG_CHAT)
    committed: list[str] = []
    enough = asyncio.Event()
    stop = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set():
            text = f"note number {i}"
            await domain.cases.apply(cases[i % 2], Action.NOTE, wg, Change(text=text), clock())
            committed.append(text)
            i += 1
            if len(committed) >= 30:
                enough.set()
            await asyncio.sleep(0)

    folder = tmp_path / "backups"
    folder.mkdir()
    task = asyncio.create_task(writer())
    taken: list[tuple[Path, list[str]]] = []
    try:
        await enough.wait()
        for n in range(4):
            before = list(committed)  # every note committed before this backup begins
            clock.advance(seconds=1)
            path = await asyncio.to_thread(backup, domain.settings.database_path, folder, clock())
            taken.append((path, before))
            while len(committed) < len(before) + 20 + n:  # writes go on between the backups
                await asyncio.sleep(0.001)
    finally:
        stop.set()
        await task
    assert len({p for p, _ in taken}) == 4
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left

    for path, before in taken:
        assert not Path(f"{path}-wal").exists()  # one self-contained file
        target = tmp_path / f"restored-{path.stem}" / "casebot.sqlite3"  # a new machine: no folder yet
        restored = restore(path, target, clock())
        assert (restored.version, restored.aside) == (expected_version(), None)
        assert check(target) == []
        notes = notes_in(target)
        assert notes[:len(before)] == before      # everything committed before the backup began
        assert notes == committed[:len(notes)]    # then a prefix: nothing torn, nothing out of order
        # The restored database opens as the bot opens it, and the domain reads it.
        db = await Database.open(target)
        try:
            assert await db.schema_version() == expected_version()
            count = await db.one("SELECT COUNT(*) FROM events WHERE action = 'note'")
            assert count is not None and count[0] == len(notes)
        finally:
            await db.close()


async def test_changes_only_in_the_wal_are_in_the_backup_and_an_open_transaction_is_not(
    domain: Domain, clock: Clock, tmp_path: Path,
) -> None:
    """What a copy of the file would miss: committed changes not yet checkpointed into it. And a
    writer holding its transaction open neither blocks the backup nor gets half into it."""
    database = domain.settings.database_path
    await domain.db.conn.execute("PRAGMA wal_autocheckpoint=0")
    case = await domain.new_case(clock)
    await domain.cases.apply(case, Action.NOTE, Actor(WG, "Wg Member", WG_CHAT),
                             Change(text="only in the WAL"), clock())
    assert Path(f"{database}-wal").stat().st_size > 0
    other = sqlite3.connect(database, isolation_level=None, timeout=0.1)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO settings_kv(key, value) VALUES('uncommitted', 'x')")
        dest = backup(database, tmp_path / "one.sqlite3", clock())
        other.execute("COMMIT")
    finally:
        other.close()
    assert notes_in(dest) == ["only in the WAL"]
    assert rows(dest, "SELECT * FROM settings_kv WHERE key = 'uncommitted'") == []
    assert rows(database, "SELECT value FROM settings_kv WHERE key = 'uncommitted'") == [("x",)]
    assert rows(dest, "PRAGMA journal_mode") == [("delete",)]
    assert not Path(f"{dest}-wal").exists()


# --- the checks ----------------------------------------------------------------------------------


async def test_check_finds_damage_broken_references_and_a_foreign_schema(tmp_path: Path) -> None:
    good = tmp_path / "good.sqlite3"
    await make_database(good)
    assert check(good) == []

    damaged = tmp_path / "damaged.sqlite3"
    shutil.copyfile(good, damaged)
    corrupt(damaged)
    assert check(damaged)
    assert all(p.startswith(("integrity_check: ", "foreign_key_check: ", "audit_chain: ",
                             "verify-audit: ")) for p in check(damaged))

    dangling = tmp_path / "dangling.sqlite3"
    shutil.copyfile(good, dangling)
    conn = sqlite3.connect(dangling)
    conn.execute("INSERT INTO case_cards(case_id, chat_id, message_id, posted_at)"
                 " VALUES(999, -100, 1, '2026-01-01')")
    conn.commit()
    conn.close()
    assert check(dangling) == ["foreign_key_check: case_cards row 1 refers to a missing row of cases"]

    older = tmp_path / "older.sqlite3"
    shutil.copyfile(good, older)
    version = expected_version()
    for number, problems in ((version - 1, [f"schema: version {version - 1}, this casebot's is {version}"]),
                             (version + 1, [f"schema: version {version + 1} is newer than this casebot's "
                                            f"({version}): use the casebot version that wrote it"]),
                             (0, ["schema: no casebot tables (schema version 0)"])):
        conn = sqlite3.connect(older)
        conn.execute(f"PRAGMA user_version = {number}")
        conn.close()
        assert check(older) == problems
        assert check(older, older_ok=True) == (problems if number != version - 1 else [])

    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to be read as one " * 100)
    assert check(text) == [f"{text}: file is not a database"]
    assert check(tmp_path / "missing.sqlite3") == [f"{tmp_path / 'missing.sqlite3'} is not a file"]


async def test_a_backup_failing_its_checks_replaces_nothing(tmp_path: Path) -> None:
    database = tmp_path / "casebot.sqlite3"
    await make_database(database)
    dest = tmp_path / "backup.sqlite3"
    dest.write_bytes(b"the previous backup")
    corrupt(database)
    with pytest.raises(BackupFailed) as failed:
        backup(database, dest, NOW)
    assert failed.value.problems
    assert dest.read_bytes() == b"the previous backup"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# --- the command line ----------------------------------------------------------------------------


def write_config(tmp_path: Path, database: Path) -> Path:
    path = tmp_path / "casebot.toml"
    path.write_text(f"""
[database]
path = {json.dumps(str(database))}

[[categories]]
key = "land"
name = "Land"

[[units]]
key = "moi"
name = "Ministry"
kind = "ministry"
""", encoding="utf-8")
    return path


def one_line(capsys: pytest.CaptureFixture[str], *, out: bool = False) -> str:
    stdout, stderr = capsys.readouterr()
    assert (stderr if out else stdout) == ""
    lines = (stdout if out else stderr).splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A config and its database, with a case in it."""
    database = tmp_path / "data" / "casebot.sqlite3"
    database.parent.mkdir()
    asyncio.run(make_database(database))
    conn = sqlite3.connect(database)
    conn.execute("INSERT INTO settings_kv(key, value) VALUES('marker', 'before')")
    conn.commit()
    conn.close()
    yield write_config(tmp_path, database), database


def test_cli_backup_to_a_file_and_to_a_folder(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config, _database = live
    dest = tmp_path / "copy.sqlite3"
    assert cli.main(["backup", str(dest), "--config", str(config)]) == 0
    line = one_line(capsys, out=True)
    assert line.startswith(f"backup written: {dest} (")
    assert line.endswith("MB), checked: schema version, integrity check, foreign key check, audit chain")
    assert rows(dest, "SELECT value FROM settings_kv WHERE key = 'marker'") == [("before",)]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600  # personal data: the bot's user only

    folder = tmp_path / "backups"
    folder.mkdir()
    assert cli.main(["backup", str(folder), "--config", str(config)]) == 0
    written = list(folder.iterdir())
    assert len(written) == 1 and backup_mod.NAME.fullmatch(written[0].name)
    assert one_line(capsys, out=True).startswith(f"backup written: {written[0]} (")


def test_cli_backup_usage_problems_are_exit_2(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config, database = live
    missing = tmp_path / "nowhere" / "copy.sqlite3"
    assert cli.main(["backup", str(missing), "--config", str(config)]) == 2
    assert one_line(capsys) == f"backup: {missing}: the folder {missing.parent} does not exist"
    assert cli.main(["backup", str(database), "--config", str(config)]) == 2
    assert one_line(capsys) == f"backup: {database} is the database itself: give another file or a folder"
    (tmp_path / "other").mkdir()
    other = write_config(tmp_path / "other", tmp_path / "none" / "casebot.sqlite3")
    assert cli.main(["backup", str(tmp_path / "x.sqlite3"), "--config", str(other)]) == 2
    assert one_line(capsys) == (f"backup: no database at {tmp_path / 'none' / 'casebot.sqlite3'} "
                                "(the bot creates it when it starts)")
    assert cli.main(["backup", str(tmp_path / "x.sqlite3"), "--config", str(tmp_path / "no.toml")]) == 2
    assert one_line(capsys).startswith("config error: config: file ")


def test_cli_backup_of_a_damaged_database_is_exit_1(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config, database = live
    corrupt(database)
    assert cli.main(["backup", str(tmp_path / "copy.sqlite3"), "--config", str(config)]) == 1
    assert one_line(capsys).startswith("backup failed, nothing written: integrity_check: ")
    assert not (tmp_path / "copy.sqlite3").exists()


def set_marker(database: Path, value: str) -> None:
    conn = sqlite3.connect(database)
    conn.execute("UPDATE settings_kv SET value = ? WHERE key = 'marker'", (value,))
    conn.commit()
    conn.close()


def test_cli_restore_keeps_the_current_database_aside_with_its_wal(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The database in place when restoring is renamed aside together with its -wal, which may hold
    committed changes (a crash left it); the restored file is the backup's content, alone."""
    config, database = live
    saved = tmp_path / "saved.sqlite3"
    assert cli.main(["backup", str(saved), "--config", str(config)]) == 0
    capsys.readouterr()
    # Changes after the backup, left in the -wal as a crash would leave them.
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE settings_kv SET value = 'after' WHERE key = 'marker'")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{database}{suffix}", crashed / f"casebot.sqlite3{suffix}")
    writer.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    for suffix in ("", "-wal"):
        shutil.copyfile(crashed / f"casebot.sqlite3{suffix}", f"{database}{suffix}")
    assert Path(f"{database}-wal").stat().st_size > 0

    assert cli.main(["restore", str(saved), "--config", str(config)]) == 0
    line = one_line(capsys, out=True)
    aside = next(p for p in database.parent.iterdir() if ".before-restore-" in p.name and
                 not p.name.endswith("-wal"))
    assert line == (f"restored {saved} into {database} (schema version {expected_version()}); "
                    f"the database that was there is kept as {aside}")
    assert rows(database, "SELECT value FROM settings_kv WHERE key = 'marker'") == [("before",)]
    assert rows(aside, "SELECT value FROM settings_kv WHERE key = 'marker'") == [("after",)]
    assert check(database) == []
    assert not Path(f"{database}-wal").exists()


def test_cli_restore_refuses_while_the_bot_seems_to_run_unless_forced(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config, database = live
    saved = tmp_path / "saved.sqlite3"
    assert cli.main(["backup", str(saved), "--config", str(config)]) == 0
    capsys.readouterr()
    set_marker(database, "after")
    beat = heartbeat_path(database)
    assert beat is not None
    Heartbeat(beat, lambda: datetime.now(UTC)).beat()
    assert cli.main(["restore", str(saved), "--config", str(config)]) == 2
    assert one_line(capsys) == (f"restore: the bot seems to be running (its heartbeat {beat} is less "
                                "than 60 s old): stop it first (or give --force if it is stopped)")
    assert rows(database, "SELECT value FROM settings_kv WHERE key = 'marker'") == [("after",)]
    # A stale heartbeat: the bot stopped (or died) long ago.
    beat.write_text((datetime.now(UTC) - timedelta(minutes=5)).isoformat() + "\n")
    assert cli.main(["restore", str(saved), "--config", str(config)]) == 0
    capsys.readouterr()
    assert rows(database, "SELECT value FROM settings_kv WHERE key = 'marker'") == [("before",)]
    Heartbeat(beat, lambda: datetime.now(UTC)).beat()
    set_marker(database, "again")
    assert cli.main(["restore", str(saved), "--force", "--config", str(config)]) == 0
    assert one_line(capsys, out=True).startswith(f"restored {saved} into {database} ")
    assert rows(database, "SELECT value FROM settings_kv WHERE key = 'marker'") == [("before",)]
    asides = [p for p in database.parent.iterdir() if ".before-restore-" in p.name
              and not p.name.endswith(("-wal", "-shm"))]
    assert len(asides) == 2  # none overwritten, even within the same second
    assert sorted(rows(p, "SELECT value FROM settings_kv WHERE key = 'marker'")[0][0] for p in asides) == [
        "after", "again"]


def test_cli_restore_of_a_bad_backup_changes_nothing(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config, database = live
    before = sorted(p.name for p in database.parent.iterdir())
    damaged = tmp_path / "damaged.sqlite3"
    assert cli.main(["backup", str(damaged), "--config", str(config)]) == 0
    capsys.readouterr()
    corrupt(damaged)
    assert cli.main(["restore", str(damaged), "--config", str(config)]) == 1
    assert one_line(capsys).startswith("restore failed, nothing changed: integrity_check: ")
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 1000)
    assert cli.main(["restore", str(text), "--config", str(config)]) == 1
    assert one_line(capsys) == f"restore failed, nothing changed: cannot copy {text}: file is not a database"
    assert cli.main(["restore", str(tmp_path / "missing"), "--config", str(config)]) == 2
    assert one_line(capsys) == f"restore: no backup file at {tmp_path / 'missing'}"
    assert sorted(p.name for p in database.parent.iterdir()) == before
    assert rows(database, "SELECT value FROM settings_kv WHERE key = 'marker'") == [("before",)]


async def test_restore_of_an_older_schema_is_migrated_when_the_bot_starts(tmp_path: Path) -> None:
    database = tmp_path / "casebot.sqlite3"
    await make_database(database)
    old = tmp_path / "old.sqlite3"
    shutil.copyfile(database, old)
    conn = sqlite3.connect(old)
    conn.execute(f"PRAGMA user_version = {expected_version() - 1}")  # as if before the last migration
    conn.close()
    target = tmp_path / "restored" / "casebot.sqlite3"
    target.parent.mkdir()
    assert restore(old, target, NOW).version == expected_version() - 1
    assert check(target) != [] and check(target, older_ok=True) == []


# --- the configuration ---------------------------------------------------------------------------


def test_backup_settings(tmp_path: Path) -> None:
    base = config_dict(tmp_path / "casebot.sqlite3")
    assert parse_settings(base).backup is None
    settings = parse_settings({**base, "backup": {"folder": "/srv/backups", "time": "03:15", "keep": 30}})
    assert settings.backup is not None
    assert (str(settings.backup.folder), settings.backup.time.isoformat(), settings.backup.keep) == (
        "/srv/backups", "03:15:00", 30)
    defaults = parse_settings({**base, "backup": {"folder": "b"}}).backup
    assert defaults is not None and (defaults.time.isoformat(), defaults.keep) == ("02:00:00", 7)
    for table, message in (
        ({}, "backup.folder: required: the folder the daily backups are written to"),
        ({"folder": "b", "time": "2am"}, "backup.time: '2am' is not a time like 07:30"),
        ({"folder": "b", "keep": 0}, "backup.keep: must be at least 1, got 0"),
        ({"folder": "b", "every": 1}, "backup.every: unknown key"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_settings({**base, "backup": table})
        assert str(err.value) == message
    example = load_settings(REPO_ROOT / "config" / "casebot.example.toml").backup
    assert example is not None and example.keep >= 1


# --- the daily backup ----------------------------------------------------------------------------


async def test_the_daily_backup_is_taken_once_a_day_and_the_oldest_are_pruned(
    tmp_path: Path, clock: Clock,
) -> None:
    folder = tmp_path / "backups"
    async with running_bot(tmp_path, clock, backup={"folder": str(folder), "time": "02:00",
                                                    "keep": 2}) as bot:
        # 09:00 in Phnom Penh, and no backup yet: today's 02:00 was missed, so one is due now.
        first = await run_due(bot.services)
        assert first is not None and first.name == "casebot-20261102T020000Z.sqlite3"
        assert await run_due(bot.services) is None           # taken for today
        clock.advance(hours=16, minutes=59)                  # 01:59 the next day
        assert await run_due(bot.services) is None
        taken = [first]
        for _day in range(3):
            clock.advance(minutes=1)                         # 02:00: due
            done = await run_due(bot.services)
            assert done is not None and check(done) == []
            taken.append(done)
            clock.advance(days=1)
            clock.advance(minutes=-1)
        assert sorted(p.name for p in folder.iterdir()) == [p.name for p in taken[-2:]]
        assert [p.name for p in taken[1:]] == ["casebot-20261102T190000Z.sqlite3",
                                               "casebot-20261103T190000Z.sqlite3",
                                               "casebot-20261104T190000Z.sqlite3"]


async def test_a_failed_daily_backup_keeps_the_older_ones_and_tells_the_admins(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "backups"
    async with running_bot(tmp_path, clock, backup={"folder": str(folder), "keep": 1}) as bot:
        kept = await run_due(bot.services)
        assert kept is not None
        clock.advance(days=1)
        # A check that fails (as the audit chain's verification will when the chain is broken).
        monkeypatch.setattr(backup_mod, "CHECKS", [*backup_mod.CHECKS, lambda conn: ["audit: event 7 edited"]])
        mark = bot.api.mark()
        assert await run_due(bot.services) is None
        await bot.settle()
        assert [p.name for p in folder.iterdir()] == [kept.name]   # not pruned, nothing half-written
        assert bot.texts_since(mark, ADMIN) == [
            "⚠️ The backup failed: <code>audit: event 7 edited</code>\nThe older backups are kept. See the "
            f"bot's log and the backup folder <code>{folder}</code>."]
        # The next try (at the next start or the next day) is told again, in the admin's language.
        await bot.services.units.set_language(ADMIN, "km")
        monkeypatch.setattr(backup_mod, "CHECKS", backup_mod.CHECKS[:2])
        shutil.rmtree(folder)
        folder.write_text("a file where the folder should be")
        mark = bot.api.mark()
        assert await run_due(bot.services) is None
        await bot.settle()
        assert bot.texts_since(mark, ADMIN) == [
            f"⚠️ ការបម្រុងទុកទិន្នន័យមិនបានសម្រេចទេ៖ <code>{folder}: File exists</code>\n"
            "ខ្ញុំរក្សាទុកច្បាប់ចម្លងបម្រុងទុកចាស់ៗដដែល។ សូមលោកអ្នកពិនិត្យកំណត់ហេតុ (log) របស់ខ្ញុំ "
            f"និងថតបម្រុងទុក <code>{folder}</code>។"]


async def test_the_bot_schedules_the_daily_backup_in_local_time(tmp_path: Path) -> None:
    settings = parse_settings({**config_dict(tmp_path / "casebot.sqlite3"),
                               "backup": {"folder": str(tmp_path / "b"), "time": "02:30"}})
    from bot.app import build_application

    app = build_application(settings, "123:abc", rate_limiter=False)
    assert app.job_queue is not None
    schedule(app.job_queue, settings)
    await app.job_queue.start()
    try:
        jobs = {job.name: job for job in app.job_queue.jobs()}
        assert set(jobs) == {"backup", "backup-at-start"}
        daily = jobs["backup"].next_t
        assert daily is not None
        local = daily.astimezone(settings.tz)
        assert (local.hour, local.minute) == (2, 30)
        assert daily.utcoffset() == timedelta(hours=7)
    finally:
        await app.job_queue.stop()
    without = parse_settings(config_dict(tmp_path / "casebot.sqlite3"))
    app = build_application(without, "123:abc", rate_limiter=False)
    assert app.job_queue is not None
    schedule(app.job_queue, without)
    assert app.job_queue.jobs() == ()


# --- walked as an operator would ------------------------------------------------------------------


def real_clock() -> datetime:
    return datetime.now(UTC)


async def casebot(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=REPO_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={k: v for k, v in os.environ.items() if k != DEFAULT_CONFIG_ENV})
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_backup_while_the_bot_runs_and_restore_once_it_is_stopped(tmp_path: Path) -> None:
    """`casebot backup` in another process while the running bot takes changes; `casebot restore`
    refused while it runs, then done once it is stopped."""
    dest = tmp_path / "saved.sqlite3"
    stop = asyncio.Event()
    committed: list[str] = []
    async with running_bot(tmp_path, real_clock) as bot:  # type: ignore[arg-type]
        config = write_config(tmp_path, bot.settings.database_path)
        case = (await bot.services.cases.create(
            Actor(WG, "Wg Member", None), await draft(bot.services), real_clock())).id

        async def writer() -> None:
            i = 0
            while not stop.is_set():
                await bot.services.cases.apply(case, Action.NOTE, Actor(WG, "Wg Member", WG_CHAT),
                                               Change(text=f"note {i}"), real_clock())
                committed.append(f"note {i}")
                i += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(writer())
        try:
            while len(committed) < 20:
                await asyncio.sleep(0.01)
            before = list(committed)
            code, out, err = await casebot("backup", str(dest), "--config", str(config))
            assert (code, err) == (0, "") and out.startswith(f"backup written: {dest} ")
            code, out, err = await casebot("restore", str(dest), "--config", str(config))
            assert (code, out) == (2, "")
            assert err.startswith("restore: the bot seems to be running (its heartbeat ")
        finally:
            stop.set()
            await task
        assert len(committed) > len(before)
    code, out, err = await casebot("restore", str(dest), "--config", str(config), "--force")
    assert (code, err) == (0, "") and out.startswith(f"restored {dest} into {bot.settings.database_path} ")
    notes = notes_in(bot.settings.database_path)
    assert notes[:len(before)] == before and notes == committed[:len(notes)]
    assert check(bot.settings.database_path) == []
