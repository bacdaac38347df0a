"""SQLite-dialect SQL as PostgreSQL runs it: the one place that knows both dialects' spelling.

The bot's SQL is written once, in SQLite's dialect (as it always was); on PostgreSQL each
statement is rewritten here once (and cached) before it goes to the server:

- ``?`` placeholders become ``%s`` (and a literal ``%`` is doubled);
- ``INSERT OR IGNORE`` becomes ``INSERT … ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` an
  upsert on the table's primary key (``ON CONFLICT (pk) DO UPDATE SET`` every other column);
- ``INDEXED BY`` hints are dropped (PostgreSQL's planner picks the partial index itself);
- ``IFNULL`` is ``COALESCE``; ``LIKE`` is ``ILIKE`` (SQLite's LIKE ignores case);
  ``CAST(… AS INTEGER)`` is ``AS BIGINT`` (SQLite's integers are 64-bit);
- ``MAX(a, b)``/``MIN(a, b)`` (scalar, two arguments or more) are ``GREATEST``/``LEAST``;
- the JSON functions: ``json_extract(x, '$.a.b')`` (a ``jsonb``, read back as the Python value,
  as SQLite gives it), ``json_type(x, '$.a')`` (NULL when absent, like SQLite's; the type's
  name is PostgreSQL's), ``json_each(x)`` (the elements of an array, as text: ``value``),
  ``json_array``, ``json_object``, ``json_group_array`` (text), ``group_concat``;
- an ``INSERT`` into a table with an ``id`` identity gets ``RETURNING id``, which gives the
  cursor its ``lastrowid``.

What cannot be rewritten statement by statement is provided by the PostgreSQL schema itself
(bot/migrations_pg/0001_init.sql): the collation ``nocase`` (``COLLATE NOCASE``) and ``SUM`` of a
condition (SQLite's conditions are 0 or 1). ``BEGIN IMMEDIATE`` and ``PRAGMA`` are the
connection's (bot/pg.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*")
_MASK = re.compile("\x00(\\d+)\x00")
_FLAGS = re.IGNORECASE

_SIMPLE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bINDEXED\s+BY\s+\w+", _FLAGS), ""),
    (re.compile(r"\bNOT\s+INDEXED\b", _FLAGS), ""),
    (re.compile(r"\bIFNULL\s*\(", _FLAGS), "COALESCE("),
    (re.compile(r"\bLIKE\b", _FLAGS), "ILIKE"),
    (re.compile(r"\bAS\s+INTEGER\s*\)", _FLAGS), "AS BIGINT)"),
    (re.compile(r"\bAS\s+REAL\s*\)", _FLAGS), "AS DOUBLE PRECISION)"),
    (re.compile(r"\bjson_array\s*\(", _FLAGS), "json_build_array("),
    (re.compile(r"\bjson_object\s*\(", _FLAGS), "json_build_object("),
]
_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", _FLAGS)
_OR_REPLACE = re.compile(r"\b(?:INSERT\s+OR\s+REPLACE|REPLACE)\s+INTO\s+(\w+)\s*\(([^)]*)\)", _FLAGS)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", _FLAGS)
_RETURNING = re.compile(r"\bRETURNING\b", _FLAGS)
_ON_CONFLICT = re.compile(r"\bON\s+CONFLICT\b", _FLAGS)


@dataclass(frozen=True)
class Table:
    """What the rewriting needs of a table: its primary key's columns, and whether ``id`` is an
    identity (the rowid SQLite would give back as ``lastrowid``)."""

    key: tuple[str, ...]
    identity: bool


@dataclass(frozen=True)
class Statement:
    sql: str
    returns_id: bool  # RETURNING id was added: its row is the cursor's lastrowid, not a result


def translate(sql: str, tables: Mapping[str, Table], params: bool = True) -> Statement:
    """``sql`` (SQLite's dialect) as PostgreSQL's. ``params``: whether it is sent with
    parameters (then ``%`` is doubled for the driver)."""
    literals: list[str] = []

    def mask(m: re.Match[str]) -> str:
        if m.group(0).startswith("--"):
            return " "
        literals.append(m.group(0))
        return f"\x00{len(literals) - 1}\x00"

    text = _LITERAL.sub(mask, sql).strip().rstrip(";")
    for pattern, repl in _SIMPLE:
        text = pattern.sub(repl, text)
    text = _calls(text, literals)

    suffix = ""
    if _OR_IGNORE.search(text):
        text = _OR_IGNORE.sub("INSERT INTO", text)
        suffix = " ON CONFLICT DO NOTHING"
    elif m := _OR_REPLACE.search(text):
        table, columns = m.group(1), [c.strip() for c in m.group(2).split(",")]
        info = tables.get(table.lower())
        if info is None or not info.key:
            raise ValueError(f"INSERT OR REPLACE into {table}: its primary key is not known")
        text = f"{text[:m.start()]}INSERT INTO {table}({', '.join(columns)}){text[m.end():]}"
        rest = [c for c in columns if c.lower() not in info.key]
        action = (f"DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in rest)}" if rest
                  else "DO NOTHING")
        suffix = f" ON CONFLICT ({', '.join(info.key)}) {action}"
    returns_id = False
    if suffix:
        r = _RETURNING.search(text)
        text = text[:r.start()] + suffix.strip() + " " + text[r.start():] if r else text + suffix
    if (m := _INSERT.match(text)) and not _RETURNING.search(text):
        info = tables.get(m.group(1).lower())
        if info is not None and info.identity:
            text += " RETURNING id"
            returns_id = True

    text = text.replace("?", "\x01")
    text = _MASK.sub(lambda m: literals[int(m.group(1))], text)
    if params:
        text = text.replace("%", "%%").replace("\x01", "%s")
    return Statement(text, returns_id)


def _calls(text: str, literals: list[str]) -> str:
    """The function calls whose arguments must be seen whole."""
    for name, rewrite in _CALLS.items():
        pattern = re.compile(rf"\b{name}\s*\(", _FLAGS)
        start = 0
        while m := pattern.search(text, start):
            args, end = _arguments(text, m.end())
            new = rewrite(args, literals)
            if new is None:
                start = m.end()
                continue
            text = text[:m.start()] + new + text[end:]
            start = m.start() + len(new)
    return text


def _arguments(text: str, at: int) -> tuple[list[str], int]:
    """The arguments of the call whose "(" ends just before ``at``, and where its ")" ends."""
    depth, args, buf = 0, [], list[str]()
    for i in range(at, len(text)):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                args.append("".join(buf).strip())
                return [a for a in args if a], i + 1
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    raise ValueError("unbalanced parentheses in SQL")


def _path(arg: str, literals: list[str]) -> str:
    """A JSON path literal ('$.a.b') as PostgreSQL's text array literal ('{a,b}')."""
    m = _MASK.fullmatch(arg)
    if m is None:
        raise ValueError(f"a JSON path must be a literal like '$.a', not {arg}")
    path = literals[int(m.group(1))][1:-1]
    if not (path == "$" or path.startswith("$.")) or "[" in path:
        raise ValueError(f"JSON path {path!r}: only '$' and '$.a.b' are supported on PostgreSQL")
    literals.append("'{" + ",".join(path[2:].split(".") if path != "$" else []) + "}'")
    return f"\x00{len(literals) - 1}\x00"


def _json_extract(args: list[str], literals: list[str]) -> str:
    if len(args) != 2:
        raise ValueError("json_extract: one path only on PostgreSQL")
    return f"(CAST({args[0]} AS jsonb) #> {_path(args[1], literals)})"


def _json_type(args: list[str], literals: list[str]) -> str:
    if len(args) == 1:
        return f"jsonb_typeof(CAST({args[0]} AS jsonb))"
    return f"jsonb_typeof(CAST({args[0]} AS jsonb) #> {_path(args[1], literals)})"


def _json_each(args: list[str], literals: list[str]) -> str:
    return f"jsonb_array_elements_text(CAST({args[0]} AS jsonb))"


def _json_group_array(args: list[str], literals: list[str]) -> str:
    return f"CAST(COALESCE(json_agg({args[0]}), CAST('[]' AS json)) AS TEXT)"


def _group_concat(args: list[str], literals: list[str]) -> str:
    sep = args[1] if len(args) > 1 else "','"
    return f"string_agg(CAST({args[0]} AS TEXT), {sep})"


def _scalar(name: str) -> Callable[[list[str], list[str]], str | None]:
    def rewrite(args: list[str], literals: list[str]) -> str | None:
        if len(args) < 2:
            return None  # the aggregate: as it is
        return f"{name}({', '.join(args)})"
    return rewrite


_CALLS: dict[str, Callable[[list[str], list[str]], str | None]] = {
    "json_extract": _json_extract,
    "json_type": _json_type,
    "json_each": _json_each,
    "json_group_array": _json_group_array,
    "group_concat": _group_concat,
    "max": _scalar("GREATEST"),
    "min": _scalar("LEAST"),
}
