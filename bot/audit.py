"""The audit chain: a history no one can quietly rewrite.

One hash chain per database runs through every row that records who did what: the events of
every case (``events``) and the changes to the records that decide who may do what
(``audit_log``: grants and revocations of roles, invitations created, used and withdrawn, chat
bindings, the working group's chat). Each row holds its place in the chain (``seq``: 1, 2, 3 …
across both tables), the hash of the row before it (``prev``) and its own hash::

    hash = SHA-256(prev ‖ "\\n" ‖ canonical JSON of the row's content)

so a row edited, deleted, inserted or moved breaks the links after it. ``audit_head`` holds the
chain's last position and hash (a truncated tail shows against it), and the head is published
outside the database once a day (the working group's digest, the log) so that even a rewrite of
the whole chain shows against a head held elsewhere (``verify(..., published=…)``).

Personal data is never hashed as such: an event's free text (a note, a reason, what was done…)
lives in ``event_texts`` with a random salt, and the event hashes only the commitment
SHA-256(salt ‖ text). Erasing the text (and its salt) leaves the commitment, so the chain still
verifies; verification checks each text still held against its commitment, and accepts a missing
one only for a case whose personal data was erased after it.

An event also holds the hash of the previous event of its own case (``case_prev``): a deleted
event is then attributed to its case whenever the case had a later event.

The tables that decide rights change in place (a grant is revoked, an invitation used); every such
change appends an image of the row as it is after the change (``record_rows``), and verification
replays the images and compares them with the tables as they are.

This module knows SQL and hashing only: no Telegram, no domain rules. ``verify`` and ``check``
work on a running bot's ``Database`` or on any database file (a backup, a copy).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot import pg

if TYPE_CHECKING:
    from bot.db import Conn, Database

GENESIS = "0" * 64  # the "hash" before the first row
ERASE_ACTION = "erase"  # the event that records an erasure of a case's personal data

# The tables whose rows decide who may do what, by their key column; of settings_kv only the
# keys listed in AUDITED_SETTINGS.
AUDITED_TABLES: dict[str, str] = {
    "grants": "id",
    "invitations": "id",
    "chat_bindings": "unit_id",
    "settings_kv": "key",
}
WG_CHAT_SETTING = "wg_chat_id"  # the working group's chat, bound with /bindchat workgroup
AUDITED_SETTINGS = (WG_CHAT_SETTING,)

KINDS = ("edited", "deleted", "inserted", "reordered", "rewritten", "missing")


# --- hashing ----------------------------------------------------------------------------------

def canonical(values: Sequence[object]) -> str:
    """The one encoding hashed: compact JSON, UTF-8 as is."""
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def link_hash(prev: object, content: str) -> str:
    return hashlib.sha256(f"{prev}\n{content}".encode()).hexdigest()


def commitment(salt: str, text: str) -> str:
    """SHA-256(salt ‖ text): binds the event to its text without holding it."""
    return hashlib.sha256(bytes.fromhex(salt) + text.encode()).hexdigest()


def event_content(
    case_prev: object, case_id: object, at: object, actor_id: object, actor_name: object,
    action: object, from_status: object, to_status: object, data: object, note_commit: object,
) -> str:
    return canonical(["event", case_prev, case_id, at, actor_id, actor_name, action, from_status,
                      to_status, data, note_commit])


def record_content(at: object, kind: object, data: object) -> str:
    return canonical(["record", at, kind, data])


def seal(text: str) -> tuple[str | None, str | None]:
    """A fresh salt and the commitment for an event's free text (none for an empty text)."""
    if not text:
        return None, None
    salt = secrets.token_hex(16)
    return salt, commitment(salt, text)


# --- appending (inside a write transaction, on the raw connection) ---------------------------

@dataclass
class Chain:
    """The chain's running end while rows are appended in order: by the bot (one at a time, the
    end read from ``audit_head``), or in bulk (the migration, benchmark databases)."""

    seq: int = 0
    hash: str = GENESIS
    case_heads: dict[int, str] = field(default_factory=dict)  # bulk only: each case's last event

    def event(
        self, case_id: int, at: str, actor_id: int | None, actor_name: str, action: str,
        from_status: str | None, to_status: str | None, note: str, data: str,
        case_prev: str | None = None,
    ) -> tuple[tuple[Any, ...], tuple[str, str] | None]:
        """The chain columns of the next event: (note_commit, seq, case_prev, prev, hash), and
        its text row's (salt, text) if it has a text."""
        if case_prev is None:
            case_prev = self.case_heads.get(case_id, GENESIS)
        salt, commit = seal(note)
        h = link_hash(self.hash, event_content(case_prev, case_id, at, actor_id, actor_name, action,
                                               from_status, to_status, data, commit))
        values = (commit, self.seq + 1, case_prev, self.hash, h)
        self.seq, self.hash = self.seq + 1, h
        self.case_heads[case_id] = h
        return values, (None if salt is None else (salt, note))

    def record(self, at: str, kind: str, data: str) -> tuple[int, str, str]:
        """(seq, prev, hash) of the next audit_log row."""
        h = link_hash(self.hash, record_content(at, kind, data))
        values = (self.seq + 1, self.hash, h)
        self.seq, self.hash = self.seq + 1, h
        return values


EVENT_INSERT = (
    "INSERT INTO events(case_id, at, actor_id, actor_name, action, from_status, to_status, data,"
    " note_commit, seq, case_prev, prev, hash) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)")
RECORD_INSERT = "INSERT INTO audit_log(at, kind, data, seq, prev, hash) VALUES(?,?,?,?,?,?)"


def _chain_end(conn: Conn) -> Chain:
    row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    if row is None:
        raise RuntimeError("the audit chain has no head row (audit_head)")
    return Chain(int(row[0]), str(row[1]))


def set_head(conn: Conn, chain: Chain) -> None:
    conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (chain.seq, chain.hash))


def append_event(
    conn: Conn, case_id: int, at: str, actor_id: int | None, actor_name: str,
    action: str, from_status: str | None, to_status: str | None, note: str, data: str,
) -> int:
    """Append one event to the chain (its text apart, committed to); returns its id."""
    chain = _chain_end(conn)
    last = conn.execute("SELECT hash FROM events WHERE case_id = ? ORDER BY id DESC LIMIT 1",
                        (case_id,)).fetchone()
    values, text = chain.event(case_id, at, actor_id, actor_name, action, from_status, to_status,
                               note, data, case_prev=last[0] if last else GENESIS)
    cur = conn.execute(EVENT_INSERT, (case_id, at, actor_id, actor_name, action, from_status,
                                      to_status, data, *values))
    event_id = cur.lastrowid
    assert event_id is not None
    if text is not None:
        conn.execute("INSERT INTO event_texts(event_id, salt, text) VALUES(?,?,?)", (event_id, *text))
    set_head(conn, chain)
    return event_id


def append_record(conn: Conn, at: str, kind: str, data: dict[str, Any],
                  chain: Chain | None = None) -> None:
    """Append one change of the records that decide rights (``chain``: in bulk, kept by the
    caller, who then calls ``set_head``)."""
    own = chain is None
    chain = _chain_end(conn) if chain is None else chain
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    conn.execute(RECORD_INSERT, (at, kind, text, *chain.record(at, kind, text)))
    if own:
        set_head(conn, chain)


def _row_image(conn: Conn, table: str, key: object) -> dict[str, Any] | None:
    column = AUDITED_TABLES[table]
    cur = conn.execute(f"SELECT * FROM {table} WHERE {column} = ?", (key,))
    row = cur.fetchone()
    if row is None:
        return None
    return {d[0]: row[i] for i, d in enumerate(cur.description)}


def record_rows(conn: Conn, at: str, kind: str, table: str, keys: Iterable[object],
                chain: Chain | None = None) -> None:
    """Record the rows of ``table`` with these keys as they are now (after the change ``kind``);
    a key whose row is gone is recorded as removed. Call it in the change's own transaction."""
    for key in dict.fromkeys(keys):
        append_record(conn, at, kind, {"table": table, "key": key,
                                       "row": _row_image(conn, table, key)}, chain)


def record_all(conn: Conn, at: str, kind: str, chain: Chain | None = None) -> None:
    """Record every audited row as it is (the baseline of a database that had no chain yet)."""
    for table, column in AUDITED_TABLES.items():
        keys = [r[0] for r in conn.execute(f"SELECT {column} FROM {table} ORDER BY {column}")
                if table != "settings_kv" or r[0] in AUDITED_SETTINGS]
        record_rows(conn, at, kind, table, keys, chain)


async def current_head(db: Database) -> tuple[int, str]:
    """The chain's last position and hash."""
    row = await db.one("SELECT seq, hash FROM audit_head WHERE id = 1")
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


# --- verification -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One break, named without personal data: what kind, and where (ids and positions)."""

    kind: str                    # one of KINDS
    what: str                    # one line: where, and how it shows
    position: int | None = None  # the chain position (seq) it concerns, where known
    case_id: int | None = None
    event_id: int | None = None
    table: str = "events"

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}"


@dataclass(frozen=True)
class Published:
    """A head published outside the database: ``HASH@YYYY-MM-DD``."""

    hash: str
    day: date

    @classmethod
    def parse(cls, text: str) -> Published:
        head, sep, day = text.strip().rpartition("@")
        head = head.lower()
        if not sep or len(head) != 64 or any(c not in "0123456789abcdef" for c in head):
            raise ValueError("give the head as HASH@YYYY-MM-DD: the 64 hexadecimal digits of the "
                             "published hash, '@', and the date it was published")
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"{day[:20]!r} is not a date like 2026-04-30") from None
        return cls(head, when)

    def __str__(self) -> str:
        return f"{self.hash}@{self.day.isoformat()}"


@dataclass(frozen=True)
class Summary:
    events: int
    cases: int
    records: int
    rows: int          # rows of the rights tables compared with their records
    texts: int         # free texts checked against their commitments
    erased: int        # free texts erased with their case's personal data
    head_seq: int
    head: str
    published_at: int | None = None  # the position of the published head checked, if any
    published: Published | None = None

    def line(self) -> str:
        out = (f"audit chain whole: {self.events} events of {self.cases} cases, {self.records} "
               f"records of rights ({self.rows} rows of grants, invitations and chat bindings as "
               f"recorded), {self.texts} free texts as committed ({self.erased} erased); "
               f"head {self.head} at position {self.head_seq}")
        if self.published is not None:
            out += (f"; the head published on {self.published.day.isoformat()} is in it at "
                    f"position {self.published_at}")
        return out


@dataclass
class _Link:
    table: str          # events | audit_log
    id: int
    seq: Any            # as stored (a tampered row may hold anything)
    prev: Any
    hash: Any
    content: str
    at: Any
    case_id: Any = None
    case_prev: Any = None
    action: Any = None
    kind: Any = None
    data: Any = None

    def name(self) -> str:
        where = f"position {self.seq}" if isinstance(self.seq, int) else "no valid position"
        if self.table == "events":
            return f"event {self.id} of case #{self.case_id} ({where})"
        return f"record {self.id} of the rights log ({self.kind}, {where})"

    def problem(self, kind: str, what: str) -> Problem:
        return Problem(kind, what, self.seq if isinstance(self.seq, int) else None,
                       self.case_id if self.table == "events" else None,
                       self.id if self.table == "events" else None, self.table)


def _order(seq: Any) -> float:
    return float(seq) if isinstance(seq, (int, float)) and not isinstance(seq, bool) else float("inf")


class Stopped(Exception):
    """The check was called off (the bot is stopping)."""


EVENT_LINKS = ("SELECT id, seq, case_id, at, actor_id, actor_name, action, from_status, to_status,"
               " data, note_commit, case_prev, prev, hash FROM events")
RECORD_LINKS = "SELECT id, seq, at, kind, data, prev, hash FROM audit_log"


def _event_link(r: Sequence[Any]) -> _Link:
    return _Link("events", r[0], r[1], r[12], r[13],
                 event_content(r[11], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]),
                 r[3], case_id=r[2], case_prev=r[11], action=r[6])


def _record_link(r: Sequence[Any]) -> _Link:
    return _Link("audit_log", r[0], r[1], r[5], r[6], record_content(r[2], r[3], r[4]), r[2],
                 kind=r[3], data=r[4])


def _key(x: _Link) -> tuple[float, str, int]:
    return (_order(x.seq), x.table, x.id)


def _checked(rows: Iterable[_Link], stop: threading.Event | None) -> Iterator[_Link]:
    for i, x in enumerate(rows):
        if stop is not None and i % 2000 == 0 and stop.is_set():
            raise Stopped()
        yield x


def _stream_links(conn: Conn, stop: threading.Event | None) -> Iterator[_Link]:
    """Every row of the chain in the order of its positions, one at a time."""
    events = map(_event_link, conn.execute(EVENT_LINKS + " ORDER BY seq, id"))
    records = map(_record_link, conn.execute(RECORD_LINKS + " ORDER BY seq, id"))
    return _checked(heapq.merge(events, records, key=_key), stop)


def _load_links(conn: Conn, stop: threading.Event | None) -> list[_Link]:
    """Every row of the chain, in memory, in the order of its positions (to classify breaks)."""
    links = list(_checked(map(_event_link, conn.execute(EVENT_LINKS)), stop))
    links += _checked(map(_record_link, conn.execute(RECORD_LINKS)), stop)
    links.sort(key=_key)
    return links


@dataclass
class _Walk:
    problems: list[Problem] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)  # indexes of the rows the chain runs through
    last_hash: str = GENESIS
    last_seq: int = 0


def _walk(links: list[_Link], head: Any) -> _Walk:
    """Follow the chain in the order the rows are stored (by position) and name each break.
    ``head``: the hash the head row says the chain ends with."""
    n = len(links)
    own = [link_hash(x.prev, x.content) == x.hash for x in links]
    position: dict[Any, int] = {}
    for i, x in enumerate(links):
        position.setdefault(x.hash, i)
    # Events whose case's previous event is nowhere: the case lost an event (to attribute deletions).
    orphans = [i for i, x in enumerate(links)
               if x.table == "events" and x.case_prev != GENESIS and x.case_prev not in position]
    walk = _Walk()
    expected, expected_seq = GENESIS, 1
    last_id: dict[str, int] = {}
    reordered: set[int] = set()

    def accept(i: int) -> None:
        nonlocal expected, expected_seq
        x = links[i]
        expected = x.hash
        expected_seq = (x.seq if isinstance(x.seq, int) else expected_seq) + 1
        last_id[x.table] = max(last_id.get(x.table, x.id), x.id)
        walk.accepted.append(i)

    def skipped(i: int) -> bool:
        """The chain goes on without row i: the next row (or the head) follows the one before."""
        if i + 1 < n:
            return own[i + 1] and links[i + 1].prev == expected and links[i + 1].prev != links[i].hash
        return head == expected and links[i].hash != head

    for i, x in enumerate(links):
        if own[i] and x.prev == expected:
            if skipped(i):
                walk.problems.append(x.problem("inserted", (
                    f"{x.name()} is not part of the chain: the chain goes on from the row before "
                    "it")))
                continue
            if x.id < last_id.get(x.table, x.id):
                reordered.add(i)
                walk.problems.append(x.problem("reordered", (
                    f"{x.name()} comes after {x.table} row {last_id[x.table]} in the chain: "
                    "rows were renumbered out of their recorded order")))
            elif x.seq != expected_seq:
                walk.problems.append(x.problem("edited", (
                    f"{x.name()}: its position was changed (the chain puts it at {expected_seq})")))
            accept(i)
            continue
        if not own[i]:
            if skipped(i):
                walk.problems.append(x.problem("inserted", (
                    f"{x.name()} is not part of the chain: the chain goes on from the row before "
                    "it")))
                continue
            walk.problems.append(x.problem("edited", f"{x.name()} no longer matches its hash"))
            accept(i)
            continue
        j = position.get(x.prev)
        if j is None and x.seq == expected_seq and walk.accepted:
            # Nothing is missing (the positions run on): the row before was changed and its own
            # hash recomputed, so this row's link to it broke.
            before = links[walk.accepted[-1]]
            walk.problems.append(before.problem("edited", (
                f"{before.name()} was changed and its hash recomputed: the row after it was "
                "chained to another")))
        elif j is None:
            first = expected_seq
            gap = (f"position {first}" if not isinstance(x.seq, int) or x.seq - first <= 1
                   else f"positions {first}–{x.seq - 1}")
            what = f"{gap} of the chain is missing, before {x.name()}"
            lost = next((k for k in orphans if k >= i), None)
            case_id = None
            if lost is not None:
                orphans.remove(lost)
                case_id = links[lost].case_id
                what += f"; case #{case_id} lost the event before its event {links[lost].id}"
            walk.problems.append(Problem("deleted", what, first, case_id, None, x.table))
        elif j > i:
            reordered.add(i)
            walk.problems.append(x.problem("reordered", f"{x.name()} is out of its recorded order"))
        elif any(k in reordered for k in range(j, i)):
            reordered.add(i)  # the rest of rows already named as reordered: the same break
        else:
            forged = links[j + 1]
            walk.problems.append(forged.problem("inserted", (
                f"{forged.name()} is not part of the chain: {x.name()} follows the row before it")))
        accept(i)
    walk.last_hash = expected
    walk.last_seq = expected_seq - 1
    return walk


def _check_head(head: tuple[Any, Any] | None, links: list[_Link], walk: _Walk) -> list[Problem]:
    if head is None:
        return [Problem("deleted", "the chain's head row (audit_head) is missing", table="audit_head")]
    seq, hash_ = head
    last = links[walk.accepted[-1]] if walk.accepted else None
    if hash_ == walk.last_hash:
        return []
    if isinstance(seq, int) and seq > walk.last_seq:
        gap = f"position {walk.last_seq + 1}" if seq == walk.last_seq + 1 else (
            f"positions {walk.last_seq + 1}–{seq}")
        return [Problem("deleted", f"the end of the chain is missing: {gap} (the head row says "
                        f"the chain runs to {seq})", walk.last_seq + 1, table="audit_head")]
    if isinstance(seq, int) and seq < walk.last_seq and last is not None:
        after = next((links[k] for k in walk.accepted if _order(links[k].seq) > seq), last)
        return [after.problem("inserted", f"{after.name()} comes after the chain's recorded "
                              f"end (position {seq})")]
    return [Problem("edited", "the chain's head row no longer matches its last row",
                    seq if isinstance(seq, int) else None, table="audit_head")]


def _check_texts(conn: Conn,
                 stop: threading.Event | None) -> tuple[list[Problem], int, int]:
    """Each free text against its event's commitment; a missing one only after an erasure."""
    problems: list[Problem] = []
    erased_after: dict[Any, float] = {
        case_id: _order(seq) for case_id, seq in conn.execute(
            "SELECT case_id, MAX(seq) FROM events WHERE action = ? GROUP BY case_id", (ERASE_ACTION,))}
    checked = erased = 0
    rows = conn.execute(
        "SELECT e.id, e.case_id, e.note_commit, e.seq, t.event_id IS NOT NULL, t.salt, t.text"
        " FROM events e LEFT JOIN event_texts t ON t.event_id = e.id ORDER BY e.id")
    for i, (event_id, case_id, commit, seq, held, salt, text) in enumerate(rows):
        if stop is not None and i % 2000 == 0 and stop.is_set():
            raise Stopped()
        where = f"event {event_id} of case #{case_id}"
        if commit is None:
            if held:
                problems.append(Problem("inserted", f"{where} recorded no free text, yet one is "
                                        "there", seq, case_id, event_id, "event_texts"))
            continue
        if not held:
            if erased_after.get(case_id, -1) > _order(seq):
                erased += 1
            else:
                problems.append(Problem("deleted", f"the free text of {where} is gone, and the "
                                        "case's personal data was never erased after it", seq,
                                        case_id, event_id, "event_texts"))
            continue
        checked += 1
        try:
            same = commitment(str(salt), str(text)) == commit
        except ValueError:
            same = False
        if not same:
            problems.append(Problem("edited", f"the free text of {where} no longer matches its "
                                    "commitment", seq, case_id, event_id, "event_texts"))
    # NOT EXISTS, not NOT IN (SELECT …): PostgreSQL runs NOT IN over a subquery that does not fit
    # work_mem as a scan of the subquery per row (hours for 500k events); NOT EXISTS is an anti-join.
    for (event_id,) in conn.execute(
            "SELECT t.event_id FROM event_texts t WHERE NOT EXISTS "
            "(SELECT 1 FROM events e WHERE e.id = t.event_id)"):
        problems.append(Problem("inserted", f"a free text for event {event_id}, which does not "
                                "exist", None, None, event_id, "event_texts"))
    return problems, checked, erased


def _differs(image: dict[str, Any], row: dict[str, Any], key_column: str) -> list[str]:
    """The columns in which a row is not as its image (the key aside)."""
    return [c for c in image if c != key_column and row.get(c) != image[c]]


Images = dict[str, dict[Any, tuple[dict[str, Any] | None, Any]]]  # table → key → (row, position)


def _replay(images: Images, x: _Link) -> None:
    """Take in one record of the rights log: the row it shows, as of its position."""
    try:
        data = json.loads(x.data)
        table, key, row = data["table"], data["key"], data["row"]
    except (ValueError, KeyError, TypeError):
        return  # an edited record: the walk names it
    if table in images:
        images[table][key] = (row, x.seq)


def _check_rights(conn: Conn, expected: Images) -> tuple[list[Problem], int]:
    """Compare the tables that decide rights with their records, replayed."""
    problems: list[Problem] = []
    compared = 0
    for table, column in AUDITED_TABLES.items():
        cur = conn.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        actual = {}
        for r in cur.fetchall():
            row = dict(zip(names, r, strict=True))
            if table == "settings_kv" and row["key"] not in AUDITED_SETTINGS:
                continue
            actual[row[column]] = row
        recorded = {k: v for k, v in expected[table].items() if v[0] is not None}

        for key in sorted(set(recorded) | set(actual), key=str):
            label = f"{table} row {key}"
            if key not in actual:
                problems.append(Problem("deleted", f"{label} is recorded (position "
                                        f"{recorded[key][1]}) but missing", recorded[key][1],
                                        table=table))
                continue
            compared += 1
            if key not in recorded:
                problems.append(Problem("inserted", f"{label} has no record in the rights log",
                                        table=table))
                continue
            image, seq = recorded[key]
            assert image is not None
            columns = _differs(image, actual[key], column)
            if not columns:
                continue
            twin = next((k for k, (im, _s) in recorded.items()
                         if k != key and im is not None and not _differs(im, actual[key], column)),
                        None)
            if twin is not None:
                problems.append(Problem("reordered", f"{label} holds what is recorded for "
                                        f"{table} row {twin}: rows were swapped or renumbered",
                                        seq, table=table))
            else:
                problems.append(Problem("edited", f"{label} differs from its record (position "
                                        f"{seq}) in {', '.join(columns)}", seq, table=table))
    return problems, compared


def _has_chain(conn: Conn) -> bool:
    from bot.db import table_names

    names = table_names(conn)
    return {"events", "audit_log", "audit_head", "event_texts"} <= names


@dataclass
class _Scan:
    """A pass over the chain in the order of its positions, holding one row at a time."""

    last_seq: int = 0
    last_hash: str = GENESIS
    events: int = 0
    records: int = 0
    published_at: tuple[int, Any] | None = None  # position and time of the published head
    images: Images = field(default_factory=lambda: {t: {} for t in AUDITED_TABLES})


def _scan(conn: Conn, head: tuple[Any, Any] | None, published: Published | None,
          stop: threading.Event | None) -> _Scan | None:
    """The whole chain in one pass, if every row is as written, linked and in its place, and the
    head row agrees; None at the first thing amiss (``_walk`` then names it)."""
    scan = _Scan()
    last_id: dict[str, int] = {}
    for x in _stream_links(conn, stop):
        if not (x.prev == scan.last_hash and x.seq == scan.last_seq + 1
                and x.id > last_id.get(x.table, x.id - 1) and link_hash(x.prev, x.content) == x.hash):
            return None
        scan.last_seq, scan.last_hash, last_id[x.table] = x.seq, x.hash, x.id
        if x.table == "events":
            scan.events += 1
        else:
            scan.records += 1
            _replay(scan.images, x)
        if published is not None and x.hash == published.hash:
            scan.published_at = (x.seq, x.at)
    if head is None or tuple(head) != (scan.last_seq, scan.last_hash):
        return None
    return scan


def _published_problem(published: Published, found: tuple[int, Any] | None) -> list[Problem]:
    if published.hash == GENESIS:
        return []
    if found is None:
        return [Problem("rewritten", (
            f"the head published on {published.day.isoformat()} ({published.hash}) is not in the "
            "chain: the chain was rewritten or cut back since"), table="audit_head")]
    seq, at = found
    if str(at)[:10] > (published.day + timedelta(days=1)).isoformat():
        return [Problem("rewritten", (
            f"the head published on {published.day.isoformat()} is at position {seq}, dated "
            f"{str(at)[:10]}: later than it was published"), seq, table="audit_head")]
    return []


def check_connection(conn: Conn, published: Published | None = None,
                     stop: threading.Event | None = None) -> tuple[list[Problem], Summary]:
    """Recompute the whole chain on an open connection: every break, in chain order first (the
    first broken link first), then free texts, rights tables and the head. Reads only, in one
    read transaction (a consistent snapshot). A whole chain is read one row at a time; only a
    broken one is read into memory, to name its breaks. ``stop``: call it off (``Stopped``)."""
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        if not _has_chain(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            return [Problem("missing", f"this database has no audit chain yet (schema version "
                            f"{version}): the bot adds it when it next starts", table="")], \
                Summary(0, 0, 0, 0, 0, 0, 0, GENESIS)
        row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        head = None if row is None else (row[0], row[1])
        problems: list[Problem] = []
        scan = _scan(conn, head, published, stop)
        if scan is None:  # something is amiss: follow the chain again, in memory, naming breaks
            links = _load_links(conn, stop)
            walk = _walk(links, None if head is None else head[1])
            problems += walk.problems
            problems += _check_head(head, links, walk)
            scan = _Scan(walk.last_seq, walk.last_hash)
            for i in walk.accepted:
                x = links[i]
                if x.table == "events":
                    scan.events += 1
                else:
                    scan.records += 1
                    _replay(scan.images, x)
                if published is not None and x.hash == published.hash:
                    scan.published_at = (x.seq, x.at)
        text_problems, texts, erased = _check_texts(conn, stop)
        problems += text_problems
        rights_problems, rows = _check_rights(conn, scan.images)
        problems += rights_problems
        if published is not None:
            problems += _published_problem(published, scan.published_at)
        cases = conn.execute("SELECT COUNT(DISTINCT case_id) FROM events").fetchone()[0]
        summary = Summary(
            scan.events, cases, scan.records, rows, texts, erased, scan.last_seq, scan.last_hash,
            None if scan.published_at is None else scan.published_at[0], published)
        return problems, summary
    finally:
        if began:
            conn.execute("ROLLBACK")


def _check_file(path: Path, published: Published | None,
                stop: threading.Event | None) -> tuple[list[Problem], Summary]:
    """Open the file read-only (it must exist) and check it."""
    if not path.is_file():
        raise FileNotFoundError(f"no database at {path}")
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                           isolation_level=None)
    try:
        return check_connection(conn, published, stop)
    finally:
        conn.close()


def _check_url(url: str, published: Published | None,
               stop: threading.Event | None) -> tuple[list[Problem], Summary]:
    """A PostgreSQL database, on a connection of its own (one snapshot: REPEATABLE READ)."""
    conn = pg.PgConnection.connect(url)
    try:
        return check_connection(conn, published, stop)
    finally:
        conn.close()


async def check(db: Database | str | Path,
                published: Published | None = None) -> tuple[list[Problem], Summary]:
    """Verify the chain of the running bot's database, or of any database file (a backup): its
    own read-only connection in a thread, so that the bot's connection is not held up (an
    in-memory database is read on the bot's connection). Cancelled (the bot stopping), the thread
    stops within a few thousand rows."""
    stop = threading.Event()
    try:
        if isinstance(db, str) and pg.is_url(db):
            return await asyncio.to_thread(_check_url, db, published, stop)
        if isinstance(db, (str, Path)):
            return await asyncio.to_thread(_check_file, Path(db), published, stop)
        if db.postgresql:
            return await asyncio.to_thread(_check_url, str(db.target), published, stop)
        rows = await db.all("PRAGMA database_list")
        path = next((str(r[2]) for r in rows if r[1] == "main"), "")
        if path:
            return await asyncio.to_thread(_check_file, Path(path), published, stop)
        return await db.in_thread(lambda conn: check_connection(conn, published, stop))
    except asyncio.CancelledError:
        stop.set()
        raise


async def verify(db: Database | str | Path, published: Published | None = None) -> list[Problem]:
    """The breaks in the chain (an empty list: whole). For ``casebot verify-audit``, the daily
    check, and checking a backup before it is trusted."""
    problems, _summary = await check(db, published)
    return problems


def iter_problem_lines(problems: Sequence[Problem], limit: int = 20) -> Iterator[str]:
    """What ``casebot verify-audit`` prints of a broken chain: the first broken link first."""
    yield f"audit chain broken: {len(problems)} problem(s); the first broken link:"
    for p in problems[:limit]:
        yield f"  {p}"
    if len(problems) > limit:
        yield f"  … and {len(problems) - limit} more"
