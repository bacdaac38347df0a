"""Backups on PostgreSQL: ``pg_dump`` of the bot's schema in its custom format, and restore with
``pg_restore`` in one transaction.

``pg_dump`` reads one snapshot (REPEATABLE READ) while the bot goes on writing: the dump is the
database at one moment. It is written under a temporary name beside its destination, checked
(``pg_restore --list`` reads it whole, and it holds the tables the audit chain needs and the
schema version), made readable by its owner only, and only then renamed into place. The password
goes to the tools in ``PGPASSWORD`` (from ``CASEBOT_DATABASE_PASSWORD``), never on a command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bot.pg import PASSWORD_ENV, PgConnection, redacted

# What a dump must hold to be a casebot database (besides every other table).
NEEDED = ("schema_version", "cases", "events", "audit_log", "audit_head")
TIMEOUT = 3600


class ToolMissing(Exception):
    """pg_dump or pg_restore is not installed: the message says what to install."""


def backup_name(now: datetime) -> str:
    """``casebot-20261129T020000Z.dump``: the UTC time the backup was taken."""
    return f"casebot-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.dump"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"{name} is not installed: install PostgreSQL's client tools "
                          "(Debian: apt-get install postgresql-client), of the server's version or later")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    password = os.environ.get(PASSWORD_ENV)
    if password:
        env["PGPASSWORD"] = password
    return env


def schema_of(url: str) -> str:
    conn = PgConnection.connect(url)
    try:
        return conn.schema
    finally:
        conn.close()


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False)


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def check(path: Path) -> list[str]:
    """The problems of the dump at ``path``: it must read whole and hold casebot's tables."""
    done = _run([_tool("pg_restore"), "--list", str(path)])
    if done.returncode != 0:
        return [f"{path} is not a readable dump: {_first_line(done.stderr)}"]
    data = {line.split(" TABLE DATA ", 1)[1].split()[1] for line in done.stdout.splitlines()
            if " TABLE DATA " in line and len(line.split(" TABLE DATA ", 1)[1].split()) > 1}
    return [f"{path}: the dump holds no table {t}" for t in NEEDED if t not in data]


def backup(url: str, dest: Path) -> Path:
    """Dump the bot's schema to ``dest`` (checked, mode 600); raises ``RuntimeError`` with one
    line when it cannot."""
    dest = Path(dest)
    if dest.exists() and dest.is_dir():
        dest = dest / backup_name(datetime.now(UTC))
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    schema = schema_of(url)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        done = _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                     f"--schema={schema}", f"--file={tmp}", f"--dbname={url}"])
        if done.returncode != 0:
            raise RuntimeError(f"pg_dump of {redacted(url)} failed: {_first_line(done.stderr)}")
        problems = check(tmp)
        if problems:
            raise RuntimeError("; ".join(problems))
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def restore(backup_file: Path, url: str) -> None:
    """Put the dump in place of the bot's schema, in one transaction (all or nothing)."""
    problems = check(backup_file)
    if problems:
        raise RuntimeError("; ".join(problems))
    done = _run([_tool("pg_restore"), "--clean", "--if-exists", "--single-transaction",
                 "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={url}",
                 str(backup_file)])
    if done.returncode != 0:
        raise RuntimeError(f"pg_restore into {redacted(url)} failed, nothing changed: "
                           f"{_first_line(done.stderr)}")
