"""Backups that restore: ``casebot backup``, ``casebot restore`` and the checks both rely on.

A backup is SQLite's online backup API (``sqlite3.Connection.backup``) run on a connection of its
own, in one step: one read transaction, so the copy is the database as it was when the backup
began, with everything committed by then (the part still in the ``-wal`` file included), and
nothing of a transaction committed later or still open. Under WAL the bot's writes go on
meanwhile. The copy is written under a temporary name beside its destination, turned into a single
file (journal mode DELETE: no ``-wal`` beside it), checked (``CHECKS``) and only then renamed into
place, so a backup file is always complete and checked.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from bot.db import migrations, open_problem
from bot.health import heartbeat_path, heartbeat_problem, stale_after

# The scheduled backups' names: SQLite's files, PostgreSQL's dumps (bot/pgbackup.py).
NAME = re.compile(r"casebot-(\d{8}T\d{6}Z)\.(?:sqlite3|dump)")
MAX_LISTED = 20  # problems reported by one check, at most


class BackupRefused(Exception):
    """Nothing was tried: the arguments or the situation are wrong (one line; exit code 2)."""


class BackupFailed(Exception):
    """The copy could not be written, or failed its checks; nothing was put in place (exit 1)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(summary(problems))
        self.problems = problems


def summary(problems: list[str]) -> str:
    """The problems as one line: the first, and how many more."""
    more = len(problems) - 1
    return problems[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else "")


def backup_name(now: datetime) -> str:
    """``casebot-20261129T020000Z.sqlite3``: the UTC time the backup was taken."""
    return f"casebot-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.sqlite3"


def expected_version() -> int:
    """The schema version this casebot migrates a database to (its last migration)."""
    return len(migrations())


# --- the checks -----------------------------------------------------------------------------

Check = Callable[[sqlite3.Connection], list[str]]


def integrity_check(conn: sqlite3.Connection) -> list[str]:
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA integrity_check({MAX_LISTED})")]
    return [] if rows == ["ok"] else [f"integrity_check: {row}" for row in rows]


def foreign_key_check(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("PRAGMA foreign_key_check").fetchmany(MAX_LISTED)
    return [f"foreign_key_check: {table} row {rowid} refers to a missing row of {parent}"
            for table, rowid, parent, _fk in rows]


def audit_chain(conn: sqlite3.Connection) -> list[str]:
    """``casebot verify-audit`` on the copy: the history is whole. A database from before the
    chain has none yet (the bot adds it when it starts on it): nothing to check there."""
    from bot.audit import check_connection

    problems, _summary = check_connection(conn)
    return [f"verify-audit: {p}" for p in problems if p.kind != "missing"]


# Every check a backup must pass, on a read-only connection to it: each returns its problems, one
# line each (no personal data: they name tables, rows and pages, never what a row holds).
CHECKS: list[Check] = [
    integrity_check,
    foreign_key_check,
    audit_chain,
]


def schema(conn: sqlite3.Connection, *, older_ok: bool = False) -> list[str]:
    """The database is casebot's, at this casebot's schema version (with ``older_ok``, an older one
    too: the bot applies the newer migrations when it starts)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    expected = expected_version()
    if version == 0:
        return ["schema: no casebot tables (schema version 0)"]
    if version > expected:
        return [f"schema: version {version} is newer than this casebot's ({expected}): "
                "use the casebot version that wrote it"]
    if version < expected and not older_ok:
        return [f"schema: version {version}, this casebot's is {expected}"]
    return []


def check(path: Path, *, older_ok: bool = False, name: Path | None = None) -> list[str]:
    """Every problem of the database file at ``path`` (opened read-only; called ``name`` in the
    problems, if given); empty when it passes."""
    name = name or path
    if not path.is_file():
        return [f"{name} is not a file"]
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        return [f"{name} does not open: {exc}"]
    try:
        try:
            problems = schema(conn, older_ok=older_ok)
        except sqlite3.Error as exc:  # not even the schema version reads: not a database
            return [f"{name}: {exc}"]
        for fn in CHECKS:
            try:
                problems += fn(conn)
            except sqlite3.Error as exc:  # damaged beyond what the check lists
                problems.append(f"{fn.__name__}: {exc}")
        return problems
    finally:
        conn.close()


# --- copying --------------------------------------------------------------------------------

def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: Path, target: Path, mode: str) -> None:
    """The database at ``source`` as one self-contained file at ``target``, on disk. ``mode`` "rw"
    for the bot's database (without the bot, closing checkpoints its -wal as the bot would, rather
    than leave -wal and -shm files behind as a read-only connection does), "ro" for a backup,
    which stays as it is."""
    target.unlink(missing_ok=True)
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode={mode}", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one moment
            dst.execute("PRAGMA journal_mode=DELETE")  # one file, without a -wal beside it
        finally:
            dst.close()
    finally:
        src.close()
    _fsync(target)


def _checked_copy(source: Path, tmp: Path, *, mode: str = "rw", older_ok: bool = False) -> int:
    """Copy the database at ``source`` to ``tmp`` and check the copy: its schema version, or
    ``BackupFailed`` (and no ``tmp``)."""
    try:
        _copy(source, tmp, mode)
        problems = check(tmp, older_ok=older_ok, name=source)
        if problems:
            raise BackupFailed(problems)
        conn = sqlite3.connect(f"{tmp.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:  # the source is no database, or the disk is full
        tmp.unlink(missing_ok=True)
        raise BackupFailed([f"cannot copy {source}: {exc}"]) from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BackupFailed([f"cannot write into {tmp.parent}: {_reason(exc)}"]) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _rename(tmp: Path, dest: Path) -> None:
    os.replace(tmp, dest)  # atomic: dest is the old file or the new one, never half of one
    if hasattr(os, "O_DIRECTORY"):
        _fsync(dest.parent)  # the rename itself on disk


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def backup(database: Path, dest: Path, now: datetime) -> Path:
    """``casebot backup DEST``: the database copied to ``dest`` (a file, or a folder to write
    ``casebot-<UTC time>.sqlite3`` into), checked. The file written."""
    if str(database) == ":memory:" or not database.is_file():
        raise BackupRefused(f"no database at {database} (the bot creates it when it starts)")
    if dest.is_dir():
        dest = dest / backup_name(now)
    if not dest.parent.is_dir():
        raise BackupRefused(f"{dest}: the folder {dest.parent} does not exist")
    if _same(dest, database):
        raise BackupRefused(f"{dest} is the database itself: give another file or a folder")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    _checked_copy(database, tmp)
    try:
        os.chmod(tmp, 0o600)  # personal data: readable by the bot's user only
        _rename(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BackupFailed([f"cannot write {dest}: {_reason(exc)}"]) from None
    return dest


def scheduled(folder: Path) -> list[Path]:
    """The scheduled backups in ``folder``, newest first (by the time in their names)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if NAME.fullmatch(p.name) and p.is_file()]
    return sorted(found, key=lambda p: p.name, reverse=True)


def taken_at(path: Path) -> datetime | None:
    match = NAME.fullmatch(path.name)
    if match is None:
        return None
    return datetime.strptime(match[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def prune(folder: Path, keep: int, new: Path) -> list[Path]:
    """Delete the scheduled backups beyond the ``keep`` newest; ``new`` (just written and checked)
    is kept whatever its name. The files deleted."""
    others = [p for p in scheduled(folder) if p.name != new.name]
    gone = others[max(keep - 1, 0):]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


# --- restoring ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Restored:
    version: int
    aside: Path | None  # where the database that was in place now is


KEPT_FILES = ("", "-wal", "-journal")  # the database and what may hold its committed changes


def _aside_name(database: Path, now: datetime) -> Path:
    base = database.with_name(f"{database.name}.before-restore-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    aside, n = base, 1
    while any(Path(f"{aside}{suffix}").exists() for suffix in KEPT_FILES):  # two restores in a second
        aside, n = base.with_name(f"{base.name}-{n}"), n + 1
    return aside


def restore(backup_file: Path, database: Path, now: datetime) -> Restored:
    """Put a checked copy of ``backup_file`` in place of ``database``; the database that was there
    (with its ``-wal``, which may hold committed changes) is renamed aside with the UTC time. The
    bot must be stopped: the caller checks."""
    if not backup_file.is_file():
        raise BackupRefused(f"no backup file at {backup_file}")
    if str(database) == ":memory:":
        raise BackupRefused("database.path is :memory:: there is no file to restore into")
    if _same(backup_file, database):
        raise BackupRefused(f"{backup_file} is the database itself")
    problem = open_problem(database)  # creates its folder (a new machine), or says what is wrong
    if problem is not None:
        raise BackupRefused(problem)
    tmp = database.with_name(f".{database.name}.restore.{os.getpid()}.tmp")
    version = _checked_copy(backup_file, tmp, mode="ro", older_ok=True)
    try:
        aside = None
        if any(Path(f"{database}{suffix}").exists() for suffix in KEPT_FILES):
            aside = _aside_name(database, now)
            for suffix in KEPT_FILES:  # left beside the restored file, they would be applied to it
                if Path(f"{database}{suffix}").exists():
                    os.replace(f"{database}{suffix}", f"{aside}{suffix}")
        Path(f"{database}-shm").unlink(missing_ok=True)  # only an index of the -wal: rebuilt
        _rename(tmp, database)
    except OSError as exc:
        raise BackupFailed([f"cannot put the backup in place of {database}: {_reason(exc)}"]) from None
    finally:
        tmp.unlink(missing_ok=True)
    return Restored(version, aside)


def running(settings: Settings, now: datetime) -> str | None:
    """Why the bot seems to be running (its outbox sender's heartbeat is fresh), or None."""
    path = heartbeat_path(settings.database_path)
    if path is None or not path.exists():
        return None
    limit = stale_after(settings)
    if heartbeat_problem(path, now, limit) is not None:
        return None
    return f"its heartbeat {path} is less than {limit:.0f} s old"


# --- the command line -----------------------------------------------------------------------

def cli_backup(settings: Settings, dest: Path) -> int:
    now = datetime.now(UTC)
    if settings.database_url is not None:
        return _cli_pg_backup(settings.database_url, dest)
    try:
        written = backup(settings.database_path, dest, now)
    except BackupRefused as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 2
    except BackupFailed as exc:
        print(f"backup failed, nothing written: {exc}", file=sys.stderr)
        return 1
    size = written.stat().st_size / 1e6
    print(f"backup written: {written} ({size:.1f} MB), checked: {checked_list()}")
    return 0


def cli_restore(settings: Settings, backup_file: Path, *, force: bool) -> int:
    now = datetime.now(UTC)
    why = running(settings, now)
    if why is not None and not force:
        print(f"restore: the bot seems to be running ({why}): stop it first "
              "(or give --force if it is stopped)", file=sys.stderr)
        return 2
    if settings.database_url is not None:
        return _cli_pg_restore(backup_file, settings.database_url)
    try:
        done = restore(backup_file, settings.database_path, now)
    except BackupRefused as exc:
        print(f"restore: {exc}", file=sys.stderr)
        return 2
    except BackupFailed as exc:
        print(f"restore failed, nothing changed: {exc}", file=sys.stderr)
        return 1
    newer = (f"; the bot applies migrations {done.version + 1}-{expected_version()} when it starts"
             if done.version < expected_version() else "")
    aside = f"; the database that was there is kept as {done.aside}" if done.aside else ""
    print(f"restored {backup_file} into {settings.database_path} (schema version {done.version}{newer})"
          f"{aside}")
    return 0


def _cli_pg_backup(url: str, dest: Path) -> int:
    from bot import pgbackup

    try:
        written = pgbackup.backup(url, dest)
    except pgbackup.ToolMissing as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:
        print(f"backup failed, nothing written: {_reason(exc)}", file=sys.stderr)
        return 1
    size = written.stat().st_size / 1e6
    print(f"backup written: {written} ({size:.1f} MB, pg_dump), checked: it reads whole and holds "
          "casebot's tables")
    return 0


def _cli_pg_restore(backup_file: Path, url: str) -> int:
    from bot import pgbackup
    from bot.pg import redacted

    if not backup_file.is_file():
        print(f"restore: no backup at {backup_file}", file=sys.stderr)
        return 2
    try:
        pgbackup.restore(backup_file, url)
    except pgbackup.ToolMissing as exc:
        print(f"restore: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:
        print(f"restore failed, nothing changed: {_reason(exc)}", file=sys.stderr)
        return 1
    print(f"restored {backup_file} into {redacted(url)} (pg_restore, one transaction); the bot "
          "applies newer migrations when it starts")
    return 0


def checked_list() -> str:
    names = ["schema version", *(fn.__name__.replace("_", " ") for fn in CHECKS)]
    return ", ".join(names)
