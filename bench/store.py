"""Where a benchmark's database lives: the generated SQLite file, or (``--store postgresql``) a
PostgreSQL database holding the same data, moved there by ``casebot migrate-db`` as a user would.

PostgreSQL databases are cached on the server as the files are in bench/.data: one database per
size, named after the file's cache key (size, seed, number due, fingerprint of the SQLite
migrations, the config and ``GEN_VERSION``) and a fingerprint of the PostgreSQL migrations, so a
new migration on either side makes a new one (the stale ones of that size are dropped). A
database is marked complete (its comment) only once ``migrate-db`` has copied and verified it and
``ANALYZE`` has run: the server's autovacuum would gather those statistics within a minute of the
copy in production; on a server with autovacuum off (the one here) nothing would.

Benchmarks that write work on copies, as on SQLite: ``CREATE DATABASE … TEMPLATE`` the cached
one (the statistics come with it), dropped when the benchmark ends (``drop_copies``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench import generate
from bench.generate import working_copy as file_copy
from bot.db import POSTGRESQL, migrations
from bot.pg import is_url, redacted

SQLITE = "sqlite"
STORES = (SQLITE, POSTGRESQL)
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"  # a server's maintenance database
COMPLETE = "casebot bench: complete"
PREFIX = "casebot_bench_"
REPO = Path(__file__).resolve().parent.parent

Target = Path | str  # an SQLite file, or a postgresql:// URL

_copies: list[str] = []  # URLs of the working copies made since the last drop_copies()


def pg_fingerprint() -> str:
    h = hashlib.sha256()
    for number, sql in migrations(POSTGRESQL):
        h.update(f"{number}:{sql}".encode())
    return h.hexdigest()[:8]


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead (its query string kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def database_name(path: Path, prefix: str = PREFIX) -> str:
    """``cases-100000-s1-d500-d4cb164776.sqlite3`` → ``casebot_bench_100000_s1_d500_d4cb164776_<pg>``."""
    key = path.stem.removeprefix("cases-").replace("-", "_")
    return f"{prefix}{key}_{pg_fingerprint()}"


def ensure(path: Path, server_url: str = DEFAULT_URL, log: Callable[[str], None] = print, *,
           prefix: str = PREFIX) -> str:
    """The URL of the PostgreSQL database holding the generated file ``path``'s data, made first
    with ``casebot migrate-db`` (and analysed) if missing or out of date. ``prefix``: of the
    databases' names (a test's own, so that runs side by side do not share them)."""
    name = database_name(path, prefix)
    url = with_database(server_url, name)
    size_prefix = name.rsplit("_", 2)[0] + "_"  # the same size, seed and number due
    with _admin(server_url) as admin:
        rows = admin.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname LIKE %s", (size_prefix.replace("_", r"\_") + "%",)).fetchall()
        for datname, comment in rows:
            if datname == name and comment == COMPLETE:
                return url
            log(f"dropping {'the unfinished' if datname == name else 'the stale'} {datname}")
            admin.execute(f'DROP DATABASE "{datname}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    log(f"casebot migrate-db --from {path.name} --to {redacted(url)} …")
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-m", "bot.cli", "migrate-db", "--from", str(path), "--to", url],
                          cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"migrate-db failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    copied = time.perf_counter() - started
    with _admin(url) as conn:
        conn.execute("ANALYZE")
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{COMPLETE}'")
    log(f"migrated in {copied:.1f} s, analysed in {time.perf_counter() - started - copied:.1f} s: "
        f"{done.stdout.strip()}")
    meta = generate.meta_of(path)
    meta.setdefault("postgresql", {})[name] = {"migrate_seconds": copied}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return url


def working_copy(target: Target, work_dir: Path, name: str) -> Target:
    """A copy to write to: of the file in ``work_dir``, or of the PostgreSQL database as a new
    database made from it as a template (``name`` without its suffix, made unique)."""
    if not is_url(target):
        return file_copy(Path(target), work_dir, name)
    url = str(target)
    source = urlsplit(url).path.lstrip("/")
    stem = re.sub(r"\W", "_", name.split(".")[0])
    copy = f"{PREFIX}work_{stem}_{os.getpid()}"
    with _admin(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{source}"')
    out = with_database(url, copy)
    _copies.append(out)
    return out


def drop(url: str) -> None:
    """Drop the database ``url`` names."""
    name = urlsplit(url).path.lstrip("/")
    with _admin(with_database(url, "postgres")) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_copies() -> None:
    """Drop the working copies made so far."""
    while _copies:
        drop(_copies.pop())


def server(url: str) -> str:
    """The server's version and the settings that matter to the figures."""
    names = ("shared_buffers", "work_mem", "synchronous_commit", "autovacuum", "jit")
    with _admin(url) as admin:
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        rows = admin.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
                             (list(names),)).fetchall()
    settings = ", ".join(f"{n} {s}{'×' + str(u) if u else ''}" for n, s, u in rows)
    return f"PostgreSQL {version} on {redacted(url).split('@')[-1].split('/')[0]} ({settings})"


def label(store: str) -> str:
    return "PostgreSQL" if store == POSTGRESQL else "SQLite"


def kind(target: Target) -> str:
    return POSTGRESQL if is_url(target) else SQLITE
