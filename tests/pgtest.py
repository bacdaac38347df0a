"""The PostgreSQL run of the suite: ``CASEBOT_TEST_DATABASE_URL=postgresql://host:port/db``
makes every test that opens a database open a fresh PostgreSQL schema of its own instead of an
SQLite file (the file's path names the schema, so that a test reopening the same file, or a
process started with a config naming it, finds the same database).

Without the variable the suite runs on SQLite, and its summary says that the PostgreSQL run was
skipped and how to run it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

ENV = "CASEBOT_TEST_DATABASE_URL"
URL = os.environ.get(ENV, "").strip() or None
PREFIX = f"casebot_test_{os.getpid()}_"
HOW = f"{ENV}=postgresql://postgres@127.0.0.1:5432/test pytest -q"

_created: set[str] = set()
open_file = None  # Database.open's own function, unpatched (conftest sets it in the PostgreSQL run)
_admin = None


def enabled() -> bool:
    return URL is not None


def admin():  # type: ignore[no-untyped-def]
    global _admin
    if _admin is None:
        import psycopg

        assert URL is not None
        _admin = psycopg.connect(URL, autocommit=True, connect_timeout=5)
        _admin.execute("SET lock_timeout = '10s'")
    return _admin


def reachable() -> str | None:
    """Why the server cannot be used, or None."""
    try:
        admin().execute("SELECT 1")
    except Exception as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def url_for(path: Path | str) -> str:
    """The URL of the schema standing for the SQLite file ``path`` (created if need be)."""
    assert URL is not None
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    schema = PREFIX + digest
    if schema not in _created:
        admin().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin().execute(f"CREATE SCHEMA {schema}")
        _created.add(schema)
    sep = "&" if "?" in URL else "?"
    return f"{URL}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_all() -> None:
    """Drop the schemas the test made."""
    while _created:
        schema = _created.pop()
        try:
            admin().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        except Exception:  # a connection left open holds it: dropped at the end of the session
            leftover.add(schema)


leftover: set[str] = set()


def connect(target: Path | str):  # type: ignore[no-untyped-def]
    """A plain connection to the test's database, behind the bot's back: ``sqlite3`` on the
    file, or in the PostgreSQL run on its schema (SQLite-dialect SQL on both; autocommit)."""
    import sqlite3

    from bot import pg

    if pg.is_url(target):
        return pg.PgConnection.connect(str(target))
    if enabled():
        return pg.PgConnection.connect(url_for(target))
    return sqlite3.connect(target, isolation_level=None)


def without_triggers(con) -> list[str]:  # type: ignore[no-untyped-def]
    """Inside a transaction on ``con``: turn the triggers off until it ends. What to run after
    the changes to put them back (SQLite: the statements that made them)."""
    from bot import pg

    if isinstance(con, pg.PgConnection):
        con.raw.execute("SET LOCAL session_replication_role = replica")
        return []
    triggers = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _sql in triggers:
        con.execute(f"DROP TRIGGER {name}")
    return [sql for _name, sql in triggers]


def target_of(settings) -> Path | str:  # type: ignore[no-untyped-def]
    """The database the settings name: the file, or the URL in the PostgreSQL run."""
    return settings.database


def toml_database(path: Path | str) -> str:
    """The config's database line for the file ``path``: ``path = …``, or in the PostgreSQL
    run ``url = …`` of its schema."""
    if enabled() and not str(path).startswith("postgres"):
        return f'url = "{url_for(path)}"\npath = "{Path(path).as_posix()}"'
    if str(path).startswith("postgres"):
        return f'url = "{path}"'
    return f'path = "{Path(path).as_posix()}"'


def target(path: Path | str) -> Path | str:
    """What to open for the file ``path``: the file, or in the PostgreSQL run its schema's URL."""
    return url_for(path) if enabled() and not str(path).startswith("postgres") else path
