"""PostgreSQL through psycopg 3: a connection that takes SQLite-dialect SQL and gives rows like
``sqlite3.Row``, so that bot/db.py's ``Database`` and ``Tx`` and the callbacks they run (the audit
chain) work the same on both stores.

The connection is psycopg's, in autocommit mode, driven from one worker thread of its own (as
aiosqlite drives sqlite3): the transactions are the statements ``BEGIN``/``COMMIT`` sent by
bot/db.py, and a Python callback runs inside a transaction, in that thread, between two
statements. On PostgreSQL:

- ``BEGIN IMMEDIATE`` (SQLite: take the database's write lock now) is ``BEGIN`` and
  ``pg_advisory_xact_lock`` on the schema's own key: one writing transaction at a time across
  every connection and process on the schema, each reading what the previous one committed
  (READ COMMITTED, every statement after the lock sees every earlier commit): the same
  serialisation that SQLite gives, which the audit chain (read its head, append, move it) and
  every read-then-write path rely on. ``BEGIN`` alone (a reader wanting one snapshot, such as
  ``verify-audit``) is ``BEGIN ISOLATION LEVEL REPEATABLE READ``.
- ``PRAGMA user_version`` reads the ``schema_version`` table; other PRAGMAs do nothing.
- Parameters go as text of an unknown type, which PostgreSQL types from where they stand, as
  SQLite's type affinity does (a number compared with a text column, a text id with a number).
- ``numeric`` comes back as ``int`` when whole (``SUM`` of integers), ``float`` otherwise.

The password is never in the URL (the config refuses it): it comes from
``CASEBOT_DATABASE_PASSWORD`` (or libpq's own ``PGPASSWORD``), and no log line holds it.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import adapt, pq
from psycopg.rows import RowMaker

from bot.pgsql import Statement, Table, translate

PASSWORD_ENV = "CASEBOT_DATABASE_PASSWORD"
LOCK_TIMEOUT_MS = 5000
LOCK_CLASS = 0x0CA5E  # the first half of the advisory lock's key: casebot's writes
SCHEMA_VERSION_TABLE = "schema_version"
_INSERT_INTO = re.compile(r"\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+(\w+)", re.IGNORECASE)


def is_url(target: object) -> bool:
    return isinstance(target, str) and target.split(":", 1)[0] in ("postgresql", "postgres")


def redacted(url: str) -> str:
    """The URL as it may be shown: without a password, should one be in it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _Unknown(adapt.Dumper):
    """A Python number or truth as text of no declared type: the server types it in place."""

    oid = 0

    def dump(self, obj: Any) -> bytes:
        if isinstance(obj, bool):
            return b"1" if obj else b"0"
        return str(obj).encode()


class _Number(adapt.Loader):
    """``numeric`` as SQLite gives it: an int when whole, else a float."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


_ROW_CLASSES: dict[tuple[str, ...], type[PgRow]] = {}


class PgRow(tuple[Any, ...]):
    """A row read by index or by column name (any case), like ``sqlite3.Row``."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                try:
                    return tuple.__getitem__(self, self._index[key.lower()])
                except KeyError:
                    raise IndexError(f"No item with that key: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)

    _names: ClassVar[tuple[str, ...]] = ()


def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    cls = _ROW_CLASSES.get(names)
    if cls is None:
        index: dict[str, int] = {}
        for i, n in reversed(list(enumerate(names))):  # the first of equal names wins
            index[n] = i
            index.setdefault(n.lower(), i)
        cls = type("Row", (PgRow,), {"__slots__": (), "_index": index, "_names": names})
        _ROW_CLASSES[names] = cls
    return cls


def _rows(cursor: Any) -> RowMaker[PgRow]:
    names = tuple(d.name for d in cursor.description or ())
    cls = _row_class(names)
    return cls


class PgCursor:
    """The part of ``sqlite3.Cursor`` the bot uses."""

    def __init__(self, cur: psycopg.Cursor[Any] | None, lastrowid: int | None = None,
                 rows: list[Any] | None = None) -> None:
        self._cur = cur
        self.lastrowid = lastrowid
        self._rows = rows  # already read (RETURNING id, a PRAGMA)
        self.rowcount = cur.rowcount if cur is not None else -1
        self.description = (None if cur is None or cur.description is None
                            else [(d.name, None, None, None, None, None, None) for d in cur.description])

    def fetchall(self) -> list[Any]:
        if self._rows is not None:
            rows, self._rows = self._rows, []
            return rows
        if self._cur is None or self._cur.description is None:
            return []
        return self._cur.fetchall()

    def fetchone(self) -> Any:
        if self._rows is not None:
            return self._rows.pop(0) if self._rows else None
        if self._cur is None or self._cur.description is None:
            return None
        return self._cur.fetchone()

    def fetchmany(self, size: int = 1) -> list[Any]:
        if self._rows is not None:
            out, self._rows = self._rows[:size], self._rows[size:]
            return out
        if self._cur is None or self._cur.description is None:
            return []
        return self._cur.fetchmany(size)

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()


class PgConnection:
    """A psycopg connection that speaks SQLite's dialect (the part of ``sqlite3.Connection`` the
    bot uses: ``execute``, ``executemany``, ``in_transaction``, ``close``)."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self._tables: dict[str, Table] | None = None
        self._cache: dict[tuple[str, bool], Statement] = {}
        schema = raw.execute("SELECT current_schema()").fetchone()
        if schema is None or schema[0] is None:
            raise psycopg.OperationalError("no schema to work in: the search_path names none that exists")
        self.schema = str(schema[0])
        self.lock_key = zlib.crc32(self.schema.encode()) - (1 << 31)

    @classmethod
    def connect(cls, url: str, *, connect_timeout: int = 10) -> PgConnection:
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": _rows,
                                  "connect_timeout": connect_timeout}
        password = os.environ.get(PASSWORD_ENV)
        if password:
            kwargs["password"] = password
        raw = psycopg.connect(url, **kwargs)
        for kind in (int, bool, float):
            raw.adapters.register_dumper(kind, _Unknown)
        raw.adapters.register_loader("numeric", _Number)
        # SQLite's busy_timeout (bot/db.py): a lock held elsewhere longer than this is an error,
        # not a wait without end.
        raw.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
        return cls(raw)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()

    def tables(self) -> dict[str, Table]:
        if self._tables is None:
            self._tables = self._read_tables()
        return self._tables

    def _read_tables(self) -> dict[str, Table]:
        out: dict[str, Table] = {}
        rows = self.raw.execute(
            "SELECT c.relname, (SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index i"
            "  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            "  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
            "  WHERE i.indrelid = c.oid AND i.indisprimary),"
            " EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'id'"
            "  AND a.attidentity <> '')"
            " FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace"
            " WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'p')").fetchall()
        for name, key, identity in rows:
            out[str(name)] = Table(tuple(key or ()), bool(identity))
        return out

    def forget_schema(self) -> None:
        """After DDL (a migration): the tables are read again when next needed."""
        self._tables = None
        self._cache.clear()

    def _statement(self, sql: str, params: bool) -> Statement:
        key = (sql, params)
        st = self._cache.get(key)
        if st is None:
            insert = _INSERT_INTO.match(sql)
            if insert is not None and insert.group(1).lower() not in self.tables():
                self.forget_schema()  # a table created since the schema was read
            st = translate(sql, self.tables(), params)
            if len(self._cache) > 4000:
                self._cache.clear()
            self._cache[key] = st
        return st

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> PgCursor:
        head = sql.lstrip()[:20].upper()
        if head.startswith("BEGIN"):
            return self._begin(head)
        if head.startswith("PRAGMA"):
            return self._pragma(sql)
        has = bool(params)
        st = self._statement(sql, has)
        cur = self.raw.execute(st.sql, tuple(params) if has else None)
        if st.returns_id:
            row = cur.fetchone()
            result = PgCursor(cur, None if row is None else int(row[0]), [])
            result.rowcount = cur.rowcount
            return result
        return PgCursor(cur)

    def executemany(self, sql: str, seq: Any, /) -> PgCursor:
        rows = [tuple(r) for r in seq]
        if not rows:
            return PgCursor(None)
        st = self._statement(sql, True)
        text = st.sql[: -len(" RETURNING id")] if st.returns_id else st.sql
        with self.raw.cursor() as cur:
            cur.executemany(text, rows)
            result = PgCursor(None, None, [])
            result.rowcount = cur.rowcount
            return result

    def executescript(self, script: str) -> None:
        """A migration: many statements at once, in PostgreSQL's own dialect, as they are."""
        self.raw.execute(script.encode())
        self.forget_schema()

    def _begin(self, head: str) -> PgCursor:
        if "IMMEDIATE" in head or "EXCLUSIVE" in head:
            self.raw.execute("BEGIN")
            self.raw.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, self.lock_key))
        else:
            self.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        return PgCursor(None)

    def _pragma(self, sql: str) -> PgCursor:
        words = sql.strip().rstrip(";").split()
        name = words[1].lower() if len(words) > 1 else ""
        if name == "user_version":
            return PgCursor(None, None, [_row_class(("user_version",))((self.schema_version(),))])
        return PgCursor(None, None, [])

    def schema_version(self) -> int:
        exists = self.raw.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s",
            (SCHEMA_VERSION_TABLE,)).fetchone()
        if exists is None:
            return 0
        row = self.raw.execute(f"SELECT max(version) FROM {SCHEMA_VERSION_TABLE}").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def set_schema_version(self, number: int) -> None:
        self.raw.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA_VERSION_TABLE} ("
                         "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        self.raw.execute(f"INSERT INTO {SCHEMA_VERSION_TABLE}(version) VALUES(%s)", (number,))

    def stream(self, sql: str, params: Sequence[Any]) -> _Stream:
        """A server-side cursor over ``sql``, in one read-only snapshot (this connection is used
        for nothing else until it is closed)."""
        self.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        st = self._statement(sql, bool(params))
        self.raw.execute(f"DECLARE casebot_stream NO SCROLL CURSOR FOR {st.sql}",
                         tuple(params) if params else None)
        return _Stream(self.raw)


class _Stream:
    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def fetchmany(self, size: int) -> list[Any]:
        return self.raw.execute(f"FETCH FORWARD {int(size)} FROM casebot_stream").fetchall()
