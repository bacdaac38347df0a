"""``casebot migrate-db --from FILE --to postgresql://…``: move an SQLite database to PostgreSQL.

The file is first brought to this casebot's schema (its migrations, as the bot would at start);
the target gets PostgreSQL's migrations and must hold nothing yet. Every table is copied in one
transaction (``COPY``, one statement a table, so that rows referring to rows later in the same
table arrive whole), the identities are set after the last ids, and only then is the copy
committed. Then the row counts of every table are compared and the audit chain is verified on the
target: exit 0 when both hold, 1 otherwise, 2 when nothing was tried (one line saying why).
Stop the bot first: changes made to the file during the copy would not be in it.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from bot import audit
from bot.db import Database, DatabaseOpenError, table_names
from bot.pg import PgConnection, is_url, redacted

# Rows every fresh database has (made by its migrations), replaced by the source's.
SEEDED = {"audit_head"}
SKIPPED = {"schema_version"}


class Refused(Exception):
    """Nothing was copied: one line saying why."""


def _order(conn: sqlite3.Connection, tables: list[str]) -> list[tuple[str, set[str]]]:
    """The tables with every table a row refers to before it, each with the columns to fill in
    after the copy: where tables refer to each other (a case and the request it was made of), one
    of them goes first with those references left empty, set once the other is there."""
    foreign = {t: [(str(r[2]), str(r[3])) for r in conn.execute(f"PRAGMA foreign_key_list({t})")]
               for t in tables}
    nullable = {t: {str(r[1]) for r in conn.execute(f"PRAGMA table_info({t})") if not r[3]} for t in tables}
    out: list[tuple[str, set[str]]] = []
    done: set[str] = set()
    while len(out) < len(tables):
        left = [t for t in tables if t not in done]
        ready = [t for t in left if {r for r, _ in foreign[t]} - {t} <= done]
        chosen: list[tuple[str, set[str]]]
        if ready:
            chosen = [(t, set()) for t in sorted(ready)]
        else:  # a cycle: a table whose references not yet there may be empty for a while
            def missing(t: str) -> set[str]:
                return {c for r, c in foreign[t] if r != t and r not in done}
            t = min((t for t in left if missing(t) <= nullable[t]), key=lambda t: (len(missing(t)), t))
            chosen = [(t, missing(t))]
        out.extend(chosen)
        done.update(t for t, _ in chosen)
    return out


def copy(source: Path, url: str) -> dict[str, int]:
    """Copy every table of the file into the (empty) PostgreSQL database: rows per table."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = PgConnection.connect(url)
    try:
        tables = sorted(t for t in (str(r[0]) for r in src.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")))
        target = table_names(dst)
        missing = [t for t in tables if t not in target]
        if missing:
            raise Refused(f"the target has no table {missing[0]}: is it the same casebot version?")
        dst.execute("BEGIN IMMEDIATE")
        try:
            for t in sorted(target - SKIPPED - SEEDED):
                if dst.raw.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is not None:
                    raise Refused(f"the target already holds data (table {t}): give an empty database")
            counts: dict[str, int] = {}
            later: list[tuple[str, str, list[tuple[object, object]]]] = []  # table, column, (value, id)
            for t, deferred in _order(src, tables):
                cur = src.execute(f"SELECT * FROM {t}")
                columns = [d[0] for d in cur.description]
                held = [columns.index(c) for c in sorted(deferred)]
                for i in held:
                    later.append((t, columns[i], []))
                if t in SEEDED:  # audit_head: the one row, moved to the source's head
                    for row in cur:
                        if row[columns.index("seq")] == 0:
                            continue  # an empty chain: as the target's is
                        dst.execute(f"UPDATE {t} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                                    (*row, row[columns.index("id")]))
                    counts[t] = int(src.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                    continue
                n = 0
                with dst.raw.cursor() as pg_cur, pg_cur.copy(
                        f"COPY {t} ({', '.join(columns)}) FROM STDIN") as out:
                    while batch := cur.fetchmany(5000):
                        for row in batch:
                            if held:  # references to rows not copied yet: set below
                                values = list(row)
                                for k, i in enumerate(held):
                                    if values[i] is not None:
                                        later[len(later) - len(held) + k][2].append(
                                            (values[i], row[columns.index("id")]))
                                    values[i] = None
                                row = tuple(values)
                            out.write_row(row)
                        n += len(batch)
                counts[t] = n
                if dst.tables().get(t) is not None and dst.tables()[t].identity:
                    dst.raw.execute(
                        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), GREATEST(MAX(id), 1),"
                        f" MAX(id) IS NOT NULL) FROM {t}")
            for t, column, pairs in later:
                with dst.raw.cursor() as pg_cur:
                    pg_cur.executemany(f"UPDATE {t} SET {column} = %s WHERE id = %s", pairs)
            dst.raw.execute("COMMIT")
        except BaseException:
            dst.raw.execute("ROLLBACK")
            raise
        return counts
    finally:
        src.close()
        dst.close()


def count_rows(url: str, tables: list[str]) -> dict[str, int]:
    conn = PgConnection.connect(url)
    try:
        out = {}
        for t in tables:
            row = conn.raw.execute(f"SELECT COUNT(*) FROM {t}").fetchone()
            out[t] = int(row[0]) if row else 0
        return out
    finally:
        conn.close()


async def migrate(source: Path, url: str) -> int:
    if not source.is_file():
        print(f"migrate-db: no database at {source}", file=sys.stderr)
        return 2
    if not is_url(url):
        print("migrate-db: --to must be a postgresql:// URL (the password in "
              "CASEBOT_DATABASE_PASSWORD, not in the URL)", file=sys.stderr)
        return 2
    try:
        for target in (source, url):  # both at this casebot's schema
            db = await Database.open(target)
            await db.close()
    except DatabaseOpenError as exc:
        print(f"migrate-db: {exc}", file=sys.stderr)
        return 2
    try:
        counts = copy(source, url)
    except Refused as exc:
        print(f"migrate-db: {exc}; nothing copied", file=sys.stderr)
        return 2
    copied = count_rows(url, sorted(counts))
    differ = [t for t in counts if copied[t] != counts[t]]
    problems = await audit.verify(url)
    for t in differ:
        print(f"rows differ in {t}: {counts[t]} in the file, {copied[t]} in PostgreSQL")
    if problems:
        for line in audit.iter_problem_lines(problems):
            print(line)
    if differ or problems:
        return 1
    print(f"copied {source} into {redacted(url)}: {sum(counts.values())} rows in {len(counts)} tables, "
          "the same counts on both; verify-audit on the target: the chain is whole")
    return 0
