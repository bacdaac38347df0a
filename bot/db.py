"""The database: SQLite (one aiosqlite connection, the default) or PostgreSQL (one psycopg
connection, bot/pg.py), numbered migrations for each, serialised write transactions.

The SQL of the rest of the bot is written once, in SQLite's dialect; on PostgreSQL each statement
is rewritten by bot/pgsql.py. Callbacks run inside a transaction (``Tx.call``, ``in_thread``)
get a ``Conn``: ``sqlite3.Connection`` or ``bot.pg.PgConnection``, which answer the same calls."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import json
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite
import psycopg

from bot import pg

log = logging.getLogger(__name__)

T = TypeVar("T")


class Row(Protocol):
    """A row, by index or by column name: ``sqlite3.Row`` or ``bot.pg.PgRow``."""

    def __getitem__(self, key: Any, /) -> Any: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def lastrowid(self) -> int | None: ...
    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ..., /) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """What a callback inside a transaction may do: ``sqlite3.Connection`` or
    ``bot.pg.PgConnection`` (SQLite-dialect SQL on both)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, parameters: Any, /) -> Any: ...
    @property
    def in_transaction(self) -> bool: ...


IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)
SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def dialect(conn: object) -> str:
    return POSTGRESQL if isinstance(conn, pg.PgConnection) else SQLITE


def unique_violation(error: BaseException, table: str, column: str) -> bool:
    """Whether ``error`` is a UNIQUE (or primary key) violation of ``table.column``, on either
    store."""
    if isinstance(error, sqlite3.IntegrityError):
        return f"{table}.{column}" in str(error)
    if isinstance(error, psycopg.errors.UniqueViolation):
        detail = error.diag.message_detail or ""
        return error.diag.table_name == table and f"({column})=" in detail
    return False


def table_names(conn: Conn) -> set[str]:
    """The database's tables (the schema the connection works in, on PostgreSQL)."""
    if isinstance(conn, pg.PgConnection):
        rows = conn.raw.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    else:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in rows}


def to_db(dt: datetime) -> str:
    """A timezone-aware datetime as UTC text that sorts correctly."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def json_field_pattern(key: str, value: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern matching a JSON object's text (as ``json.dumps`` writes
    it) that holds ``key`` with the string ``value``: the same test on SQLite and PostgreSQL,
    where comparing ``json_extract`` to a text differs."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    return "%" + escape(json.dumps({key: value}, ensure_ascii=False)[1:-1]) + "%"


def from_db(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# The first line of a migration written in Python (``NNNN_name.py``, for what SQL alone cannot do,
# such as hashing): its module's ``migrate(conn)`` runs inside the migration's transaction.
PYTHON_MIGRATION = "# casebot: python migration"


MIGRATIONS = {SQLITE: "bot.migrations", POSTGRESQL: "bot.migrations_pg"}


def migrations(store: str = SQLITE) -> list[tuple[int, str]]:
    """The numbered migrations shipped in bot/migrations (SQLite) or bot/migrations_pg
    (PostgreSQL: the same numbers), in order: each one's text (SQL, or the source of a Python
    migration)."""
    out = []
    for entry in resources.files(MIGRATIONS[store]).iterdir():
        name = entry.name
        if name[:4].isdigit() and (name.endswith(".sql") or name.endswith(".py")):
            text = entry.read_text(encoding="utf-8")
            if name.endswith(".py") and not text.startswith(PYTHON_MIGRATION):
                continue
            out.append((int(name[:4]), text))
    out.sort()
    numbers = [n for n, _ in out]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..n: {numbers}")
    return out


def _python_migration(number: int, store: str = SQLITE) -> Callable[[Any], None]:
    """The ``migrate`` function of the Python migration with this number."""
    package = MIGRATIONS[store]
    for entry in resources.files(package).iterdir():
        if entry.name.endswith(".py") and entry.name[:4] == f"{number:04d}":
            module = importlib.import_module(f"{package}.{entry.name[:-3]}")
            migrate: Callable[[Any], None] = module.migrate
            return migrate
    raise RuntimeError(f"migration {number:04d}: no Python module")


class DatabaseOpenError(RuntimeError):
    """The database cannot be opened: the message is one line saying why and what to do."""


def open_problem(path: Path | str) -> str | None:
    """Why this process cannot create or write the database at ``path`` (one line), or None.

    Creates the database's folder if it is missing. Typical case: a host folder mounted at /data
    that belongs to another user than the one the container runs as."""
    db = Path(path)
    folder = db.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = folder
        while not blocker.exists() and blocker != blocker.parent:
            blocker = blocker.parent
        if blocker.exists() and not blocker.is_dir():
            return f"cannot write to {db}: {blocker} is a file, not a folder; set database.path elsewhere"
        return _not_writable(db, blocker) or f"cannot write to {db}: {folder}: {exc.strerror or exc}"
    # SQLite writes its -wal and -shm files beside the database: the folder must be writable too.
    for target in (folder, db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if target != folder and target.is_dir():
            return f"cannot write to {db}: {target} is a folder; set database.path to a file"
        if target.exists() and (problem := _not_writable(db, target)):
            return problem
    return None


def _not_writable(db: Path, target: Path) -> str | None:
    """The reason ``target`` (the database's folder or one of its files) is not writable."""
    mode = os.W_OK | (os.X_OK if target.is_dir() else 0)
    effective = os.access in os.supports_effective_ids  # the effective uid creates files
    if os.access(target, mode, effective_ids=effective):
        return None
    st = target.stat()
    uid = os.geteuid()
    if hasattr(os, "statvfs") and os.statvfs(target).f_flag & os.ST_RDONLY:
        why = "the file system is mounted read-only; mount it read-write"
    elif st.st_uid != uid:
        why = (f"{target} is owned by uid {st.st_uid} (mode {stat.filemode(st.st_mode)}) and casebot runs "
               f"as uid {uid}; chown it to {uid} (chown -R {uid}:{os.getegid()} on the host's folder) "
               "or set database.path elsewhere")
    else:
        why = (f"{target} is not writable (mode {stat.filemode(st.st_mode)}); "
               f"chmod u+w{'x' if target.is_dir() else ''} it or set database.path elsewhere")
    return f"cannot write to {db}: {why}"


class Database:
    """The single connection. Writes go through ``transaction()`` one at a time."""

    def __init__(self, conn: aiosqlite.Connection | None, *, target: Path | str = ":memory:",
                 pg_conn: pg.PgConnection | None = None) -> None:
        self._conn = conn
        self._pg = pg_conn
        self.target = target  # the file, or the PostgreSQL URL
        self.dialect = POSTGRESQL if pg_conn is not None else SQLITE
        self._write_lock = asyncio.Lock()
        self._executor = (concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="casebot-pg")
                          if pg_conn is not None else None)
        self._closed = False

    @property
    def conn(self) -> aiosqlite.Connection:
        """The aiosqlite connection (SQLite only)."""
        if self._conn is None:
            raise RuntimeError("this database is PostgreSQL: there is no aiosqlite connection")
        return self._conn

    @property
    def postgresql(self) -> bool:
        return self._pg is not None

    @classmethod
    async def open(cls, target: Path | str) -> Database:
        """Open (creating it and its folder if need be) and migrate: a file (SQLite) or a
        ``postgresql://`` URL. A database this process cannot create, write, read or reach
        raises ``DatabaseOpenError``: one line, with what to do."""
        if pg.is_url(target):
            return await cls._open_pg(str(target))
        path = target
        if str(path) != ":memory:":
            problem = open_problem(path)
            if problem is not None:
                raise DatabaseOpenError(problem)
        try:
            conn = await aiosqlite.connect(str(path), isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseOpenError(f"cannot open the database {path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            await conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            await conn.close()
            raise DatabaseOpenError(f"cannot open the database {path}: {exc}") from exc
        db = cls(conn, target=path)
        await db.migrate()
        return db

    @classmethod
    async def _open_pg(cls, url: str) -> Database:
        try:
            conn = await asyncio.to_thread(pg.PgConnection.connect, url)
        except psycopg.Error as exc:
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseOpenError(f"cannot open the database {pg.redacted(url)}: {why}") from exc
        db = cls(None, target=url, pg_conn=conn)
        try:
            await db.migrate()
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._pg is not None and self._executor is not None and not self._closed:
            self._closed = True
            pg_conn = self._pg
            await self.in_thread(lambda _c: pg_conn.close())
            self._executor.shutdown(wait=False)

    async def schema_version(self) -> int:
        row = await self.one("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        if self._pg is not None:
            await self._migrate_pg()
            return
        current = await self.schema_version()
        for number, sql in migrations():
            if number <= current:
                continue
            # executescript would COMMIT first; run the statements inside our own transaction
            # so that a failing migration leaves nothing behind.
            async with self._write_lock:
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    if sql.startswith(PYTHON_MIGRATION):
                        await self.in_thread(_python_migration(number))
                    else:
                        for statement in _split_sql(sql):
                            await self.conn.execute(statement)
                    await self.conn.execute(f"PRAGMA user_version = {number}")
                    await self.conn.execute("COMMIT")
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
            log.info("applied migration %04d", number)

    async def _migrate_pg(self) -> None:
        """Each PostgreSQL migration in a transaction of its own, under the write lock (a second
        instance starting at the same time waits, then finds it applied): its number goes into
        ``schema_version`` in the same transaction."""
        current = await self.in_thread(lambda conn: conn.schema_version())
        for number, sql in migrations(POSTGRESQL):
            if number <= current:
                continue

            def apply(conn: pg.PgConnection, number: int = number, sql: str = sql) -> bool:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if conn.schema_version() >= number:
                        conn.raw.execute("ROLLBACK")
                        return False
                    if sql.startswith(PYTHON_MIGRATION):
                        _python_migration(number, POSTGRESQL)(conn)
                    else:
                        conn.executescript(sql)
                    conn.set_schema_version(number)
                    conn.raw.execute("COMMIT")
                    return True
                except BaseException:
                    conn.raw.execute("ROLLBACK")
                    raise
                finally:
                    conn.forget_schema()

            async with self._write_lock:
                applied = await self.in_thread(apply)
            if applied:
                log.info("applied migration %04d (PostgreSQL)", number)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` under the write lock; rolls back on any error."""
        async with self._write_lock:
            tx = Tx(self)
            try:
                yield tx
                if not tx.done:
                    await tx.commit()
            except BaseException:
                if tx.begun:
                    await self.in_thread(_rollback)
                raise

    async def in_thread(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn`` on the connection (a ``Conn``) in its thread: one trip, however many
        statements.

        aiosqlite sends each call (execute, fetch, commit) to its thread and back, which costs
        far more than a statement on an indexed row; its own methods all go through
        ``Connection._execute``, used here to send several statements at once. PostgreSQL's
        connection has a thread of its own, used the same way."""
        if self._pg is not None:
            pg_conn = self._pg
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, pg_conn)
        conn = self.conn
        return await conn._execute(lambda: fn(conn._conn))

    async def batch(self, *queries: tuple[str, Iterable[Any]]) -> list[list[Row]]:
        """Several reads in one trip, each query's rows in turn."""
        prepared = [(sql, tuple(params)) for sql, params in queries]
        return await self.in_thread(lambda conn: [conn.execute(*q).fetchall() for q in prepared])

    async def write(self, sql: str, params: Iterable[Any] = (), *, many: bool = False) -> int:
        """One statement, atomic by itself (autocommit), in turn with the transactions: one trip
        to aiosqlite's thread instead of three (BEGIN, the statement, COMMIT). Rows changed.
        On PostgreSQL it is a transaction of its own under the write lock (as SQLite's write
        lock serialises it with the others)."""
        async with self._write_lock:
            if self._pg is not None:
                values = [tuple(p) for p in params] if many else tuple(params)

                def run(conn: pg.PgConnection) -> int:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        cur = conn.executemany(sql, values) if many else conn.execute(sql, values)
                        conn.raw.execute("COMMIT")
                    except BaseException:
                        conn.raw.execute("ROLLBACK")
                        raise
                    return int(cur.rowcount)

                return await self.in_thread(run)
            if many:
                cur = await self.conn.executemany(sql, params)
            else:
                cur = await self.conn.execute(sql, tuple(params))
            return int(cur.rowcount)

    async def one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        if self._pg is not None:
            values = tuple(params)
            return await self.in_thread(lambda conn: list(conn.execute(sql, values).fetchall()))
        # execute_fetchall: one trip to aiosqlite's thread; a cursor takes three (execute,
        # fetch, close), and each trip costs more than the query.
        return list(await self.conn.execute_fetchall(sql, tuple(params)))

    async def stream(self, sql: str, params: Sequence[Any] = (), size: int = 500) -> AsyncIterator[Row]:
        """The rows of a long query a batch at a time, not all at once (exports). On PostgreSQL
        a connection of its own reads them (a server-side cursor in one snapshot), so that the
        bot's connection is not held meanwhile."""
        if self._pg is None:
            async with self.conn.execute(sql, tuple(params)) as cursor:
                while batch := await cursor.fetchmany(size):
                    for row in batch:
                        yield row
            return
        reader = await asyncio.to_thread(pg.PgConnection.connect, str(self.target))
        try:
            cur = await asyncio.to_thread(reader.stream, sql, tuple(params))
            while batch := await asyncio.to_thread(cur.fetchmany, size):
                for row in batch:
                    yield row
        finally:
            await asyncio.to_thread(reader.close)


@dataclass(frozen=True)
class Result:
    rows: list[Row]
    lastrowid: int | None
    rowcount: int


class Tx:
    """A write transaction (``Database.transaction()``).

    Statements whose result nobody reads (``add``) wait, and go to the database with the next
    read or with the COMMIT, in one trip to aiosqlite's thread: a change to a case is two trips
    (BEGIN with reading the case; its row, event and outbox rows with the COMMIT and reading it
    back), not one per statement. An error anywhere, in the block or in a trip, rolls back all."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[str, Any, bool] | Callable[[Any], object]] = [
            ("BEGIN IMMEDIATE", (), False)]
        self.begun = False  # a trip has gone: BEGIN was sent
        self.done = False
        self._savepoints = 0
        self.trips = 0

    def add(self, sql: str, params: Iterable[Any] = ()) -> None:
        """A write whose result is not needed: sent with the next trip."""
        self._pending.append((sql, tuple(params), False))

    def add_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        self._pending.append((sql, [tuple(r) for r in rows], True))

    def call(self, fn: Callable[[Any], object]) -> None:
        """Python to run on the connection (a ``Conn``), in turn with the waiting writes and in the same trip
        (in aiosqlite's thread, inside the transaction): for writes that depend on rows read in
        the transaction itself, such as appending to the audit chain (bot/audit.py)."""
        self._pending.append(fn)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A part of the transaction that an error undoes alone (SAVEPOINT … RELEASE): what the
        block wrote is rolled back, the error raised, and the transaction goes on without it.
        Its writes go to the database at its end, so that an error in them is the block's."""
        self.add("SAVEPOINT part")
        mark, trips = len(self._pending) - 1, self.trips
        self._savepoints += 1
        try:
            yield
            await self.execute("RELEASE part")
        except BaseException:
            self._savepoints -= 1
            if self.trips == trips:  # nothing of the block reached the database
                del self._pending[mark:]
            else:
                self._pending = []
                await self.execute("ROLLBACK TO part")
                await self.execute("RELEASE part")
            raise
        else:
            self._savepoints -= 1

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> Result:
        """The waiting writes, then this statement: its rows, ``lastrowid`` and ``rowcount``."""
        return await self._trip((sql, tuple(params)), commit=False)

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return (await self.execute(sql, params)).rows

    async def one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        rows = (await self.execute(sql, params)).rows
        return rows[0] if rows else None

    async def commit(self, then: str | None = None, params: Iterable[Any] = ()) -> list[Row]:
        """The waiting writes and ``COMMIT``; then, in the same trip, the query ``then`` (read
        after the commit). Nothing may be done in the transaction after this."""
        self.done = True
        if not self.begun and len(self._pending) == 1 and then is None:
            return []  # nothing was done: no trip at all
        final = (then, tuple(params)) if then is not None else None
        return (await self._trip(final, commit=True)).rows

    async def _trip(self, last: tuple[str, tuple[Any, ...]] | None, *, commit: bool) -> Result:
        if self.done and not commit:
            raise RuntimeError("the transaction is over")
        batch, self._pending = self._pending, []
        self.begun = True
        self.trips += 1

        savepoints = self._savepoints

        def steps(conn: Conn) -> Result:
            for item in batch:
                if callable(item):
                    item(conn)
                    continue
                sql, params, many = item
                if many:
                    conn.executemany(sql, params)
                else:
                    conn.execute(sql, params)
            if commit:
                conn.execute("COMMIT")
            if last is None:
                return Result([], None, 0)
            cur = conn.execute(*last)
            rows = cur.fetchall()
            return Result(rows, cur.lastrowid, cur.rowcount)

        def run(conn: Conn) -> Result:
            try:
                return steps(conn)
            except BaseException:
                # PostgreSQL: an error ends what the transaction can do (SQLite: only the failed
                # statement is undone). Rolled back in the same trip, so that a read of another
                # task on the connection, before this transaction's own rollback, is not refused;
                # within a savepoint the block's ROLLBACK TO comes next instead.
                if savepoints == 0 and dialect(conn) == POSTGRESQL and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        return await self._db.in_thread(run)


def _rollback(conn: Conn) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (BEGIN … END;) whole."""
    statements: list[str] = []
    buf: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("--")):
            continue
        buf.append(line)
        candidate = "\n".join(buf)
        code = stripped.split("--", 1)[0].rstrip()  # a trailing comment may follow the ";"
        if code.endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate)
            buf = []
    if "".join(buf).strip():
        statements.append("\n".join(buf))
    return statements
