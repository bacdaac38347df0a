"""The audit chain: rows edited, deleted, inserted and reordered directly in SQLite (with the
immutability triggers dropped, and put back as a careful forger would) are found and named; a
rewrite of the whole chain shows against a published head; no code path changes an event."""

from __future__ import annotations

import argparse
import ast
import asyncio
import logging
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import audit, cli
from bot.audit_cli import cli_verify_audit
from bot.db import Database, IntegrityError, migrations, to_db
from bot.domain.cases import Actor, Change
from bot.domain.digest import DigestService
from bot.domain.rules import Action
from bot.jobs import audit as audit_job
from tests import pgtest
from tests.conftest import ADMIN, LIAISON, OFFICIAL, STRANGER, SUPERVISOR, WG, WG_CHAT, Clock, Domain

ROOT = Path(__file__).resolve().parent.parent
wg = Actor(WG, "Sophea", WG_CHAT)
dara = Actor(OFFICIAL, "Dara", OFFICIAL)
admin = Actor(ADMIN, "Admin", ADMIN)


async def history(domain: Domain, clock: Clock) -> list[int]:
    """Three cases with some history, two chats bound, the working group's chat bound."""
    a = await domain.new_case(clock)
    await domain.cases.apply(a, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    clock.advance(hours=1)
    await domain.cases.apply(a, Action.ACCEPT, dara, Change(), clock())
    b = await domain.new_case(clock, citizen_name="Keo Sina", citizen_contact="097 555 0101")
    await domain.cases.apply(a, Action.NOTE, wg, Change(text="Called the citizen on 012 345 678"),
                             clock())
    await domain.cases.apply(b, Action.NOTE, wg, Change(text="Same road as #1"), clock())
    clock.advance(hours=2)
    await domain.cases.apply(a, Action.RESOLVE, dara, Change(text="The fence is back on the line."),
                             clock())
    c = await domain.new_case(clock)
    await domain.units.bind_chat("pp-ck", -100300, ADMIN, True, clock())
    await domain.units.bind_chat("sr", -100301, ADMIN, True, clock())
    await domain.units.bind_chat("workgroup", -100302, ADMIN, True, clock())
    await domain.cases.apply(b, Action.NOTE, wg, Change(text="Waiting for the commune."), clock())
    return [a, b, c]


def path_of(domain: Domain) -> Any:
    """The database: its file, or its URL in the PostgreSQL run."""
    return pgtest.target_of(domain.settings)


def tamper(path: Any, *statements: str | tuple[str, Sequence[Any]]) -> None:
    """Change rows behind the bot's back: the triggers off, the statements, the triggers back."""
    con = pgtest.connect(path)
    try:
        con.execute("BEGIN IMMEDIATE")
        restore = pgtest.without_triggers(con)
        for statement in statements:
            if isinstance(statement, tuple):
                con.execute(*statement)
            else:
                con.execute(statement)
        for sql in restore:
            con.execute(sql)
        con.execute("COMMIT")
    finally:
        con.close()


def rows(path: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    con = pgtest.connect(path)
    try:
        return [tuple(r) for r in con.execute(sql, params)]
    finally:
        con.close()


async def first_problem(domain: Domain) -> audit.Problem:
    problems = await audit.verify(domain.db)
    assert problems, "the tampering went unnoticed"
    return problems[0]


def adjacent_events(path: Path) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Two events next to each other in the chain (ids and positions), of case #1."""
    found = rows(path, "SELECT a.id, a.seq, b.id, b.seq FROM events a JOIN events b"
                       " ON b.seq = a.seq + 1 AND b.case_id = a.case_id WHERE a.case_id = 1"
                       " ORDER BY a.seq LIMIT 1")
    assert found
    a_id, a_seq, b_id, b_seq = found[0]
    return (a_id, a_seq), (b_id, b_seq)


# --- whole -----------------------------------------------------------------------------------

async def test_a_real_history_verifies_and_says_so_in_one_line(
        domain: Domain, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    await history(domain, clock)
    problems, summary = await audit.check(domain.db)
    assert problems == []
    assert summary.events == 9 and summary.cases == 3
    assert summary.records > 0 and summary.rows > 0 and summary.texts == 4
    seq, head = await audit.current_head(domain.db)
    assert (summary.head_seq, summary.head) == (seq, head)
    assert await cli_verify_audit(domain.settings, argparse.Namespace(head=None)) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("audit chain whole: 9 events of 3 cases") and head in out[0]
    # Every event's free text is apart from the event; the event holds only its commitment.
    assert "note" not in {r[1] for r in rows(path_of(domain), "PRAGMA table_info(events)")}
    texts = rows(path_of(domain), "SELECT e.note_commit, t.salt, t.text FROM events e"
                                  " JOIN event_texts t ON t.event_id = e.id")
    assert len(texts) == 4 and all(audit.commitment(s, t) == c for c, s, t in texts)


async def test_through_the_command_line_with_the_config(
        domain: Domain, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await history(domain, clock)
    example = (ROOT / "config" / "casebot.example.toml").read_text(encoding="utf-8")
    config = tmp_path / "casebot.toml"
    config.write_text(example.replace('path = "data/casebot.sqlite3"',
                                      pgtest.toml_database(path_of(domain))), encoding="utf-8")

    def run(*args: str) -> int:  # the command runs its own event loop: in a thread of its own
        return cli.main(["verify-audit", "--config", str(config), *args])

    assert await asyncio.to_thread(run) == 0
    assert capsys.readouterr().out.startswith("audit chain whole")
    tamper(path_of(domain), "UPDATE events SET to_status = 'closed' WHERE id = 3")
    assert await asyncio.to_thread(run) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("audit chain broken") and out[1].startswith("  edited: event 3 of case #1")
    assert await asyncio.to_thread(run, "--head", "nonsense") == 2
    assert "HASH@YYYY-MM-DD" in capsys.readouterr().err
    if pgtest.enabled():
        return  # a missing file: SQLite's
    config.write_text(example.replace('path = "data/casebot.sqlite3"',
                                      f'path = "{(tmp_path / "none.sqlite3").as_posix()}"'))
    assert await asyncio.to_thread(run) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()  # checking creates nothing


# --- events ----------------------------------------------------------------------------------

async def test_an_edited_event_is_named(domain: Domain, clock: Clock) -> None:
    a, _b, _c = await history(domain, clock)
    resolve = rows(path_of(domain), "SELECT id FROM events WHERE case_id = ? AND action = 'resolve'",
                   (a,))[0][0]
    tamper(path_of(domain), ("UPDATE events SET actor_name = 'Sokha' WHERE id = ?", (resolve,)))
    p = await first_problem(domain)
    assert (p.kind, p.case_id, p.event_id) == ("edited", a, resolve)
    assert f"event {resolve} of case #{a}" in str(p) and "no longer matches its hash" in str(p)


async def test_an_edited_event_with_its_hash_recomputed_is_named(domain: Domain, clock: Clock) -> None:
    """The forger recomputes the edited row's own hash: the next row's link breaks."""
    a, _b, _c = await history(domain, clock)
    path = path_of(domain)
    (eid, _seq), _next = adjacent_events(path)
    r = rows(path, "SELECT case_prev, case_id, at, actor_id, actor_name, action, from_status,"
                   " to_status, data, note_commit, prev FROM events WHERE id = ?", (eid,))[0]
    forged = audit.event_content(r[0], r[1], "2026-10-01T00:00:00+00:00", *r[3:10])
    tamper(path, ("UPDATE events SET at = '2026-10-01T00:00:00+00:00', hash = ? WHERE id = ?",
                  (audit.link_hash(r[10], forged), eid)))
    p = await first_problem(domain)
    assert (p.kind, p.event_id, p.case_id) == ("edited", eid, a) and "hash recomputed" in p.what


async def test_a_deleted_event_is_named_with_its_case(domain: Domain, clock: Clock) -> None:
    _a, b, _c = await history(domain, clock)
    path = path_of(domain)
    note_b = rows(path, "SELECT id, seq FROM events WHERE case_id = ? AND action = 'note' ORDER BY id",
                  (b,))[0]
    tamper(path, ("DELETE FROM event_texts WHERE event_id = ?", (note_b[0],)),
           ("DELETE FROM events WHERE id = ?", (note_b[0],)))
    p = await first_problem(domain)
    assert p.kind == "deleted" and p.position == note_b[1] and p.case_id == b
    assert f"position {note_b[1]} of the chain is missing" in p.what
    assert f"case #{b} lost the event before its event" in p.what


async def test_the_last_event_deleted_shows_against_the_head_row(domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    path = path_of(domain)
    last = rows(path, "SELECT id, seq FROM events ORDER BY seq DESC LIMIT 1")[0]
    assert last[1] == rows(path, "SELECT seq FROM audit_head")[0][0]
    tamper(path, ("DELETE FROM event_texts WHERE event_id = ?", (last[0],)),
           ("DELETE FROM events WHERE id = ?", (last[0],)))
    p = await first_problem(domain)
    assert p.kind == "deleted" and p.position == last[1] and "end of the chain is missing" in p.what


async def test_an_inserted_event_is_named(domain: Domain, clock: Clock) -> None:
    """A forged "resolved" event slipped in between two others, its own hash computed right."""
    _a, b, _c = await history(domain, clock)
    path = path_of(domain)
    (_eid, seq), _next = adjacent_events(path)
    prev = rows(path, "SELECT hash FROM events WHERE seq = ?", (seq,))[0][0]
    values = (b, "2026-11-02T03:00:00+00:00", OFFICIAL, "Dara", "resolve", "new", "resolved", "{}")
    content = audit.event_content(audit.GENESIS, *values, None)
    # SQLite takes a position between two integers; PostgreSQL's integer column does not: there
    # the forger moves the rows after it up by one to make room.
    room = [] if not pgtest.enabled() else [
        (f"UPDATE {t} SET seq = seq + 1000000 WHERE seq > ?", (seq,)) for t in ("events", "audit_log")] + [
        (f"UPDATE {t} SET seq = seq - 999999 WHERE seq > 1000000", ()) for t in ("events", "audit_log")]
    tamper(path, *room, ("INSERT INTO events(id, case_id, at, actor_id, actor_name, action, from_status,"
                         " to_status, data, note_commit, seq, case_prev, prev, hash)"
                         " VALUES(500,?,?,?,?,?,?,?,?,NULL,?,?,?,?)",
                         (*values, seq + (1 if pgtest.enabled() else 0.5), audit.GENESIS, prev,
                          audit.link_hash(prev, content))))
    p = await first_problem(domain)
    assert (p.kind, p.event_id, p.case_id) == ("inserted", 500, b)
    assert "is not part of the chain" in p.what


async def test_an_event_appended_without_moving_the_head_is_inserted(domain: Domain, clock: Clock) -> None:
    _a, b, _c = await history(domain, clock)
    path = path_of(domain)
    seq, head = rows(path, "SELECT seq, hash FROM audit_head")[0]
    values = (b, "2026-11-02T09:00:00+00:00", ADMIN, "Admin", "verify", "new", "closed", "{}")
    content = audit.event_content(audit.GENESIS, *values, None)
    tamper(path, ("INSERT INTO events(case_id, at, actor_id, actor_name, action, from_status,"
                  " to_status, data, note_commit, seq, case_prev, prev, hash)"
                  " VALUES(?,?,?,?,?,?,?,?,NULL,?,?,?,?)",
                  (*values, seq + 1, audit.GENESIS, head, audit.link_hash(head, content))))
    p = await first_problem(domain)
    assert p.kind == "inserted" and p.case_id == b and p.position == seq + 1


async def test_events_swapped_in_the_chain_are_reordered(domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    path = path_of(domain)
    (a_id, a_seq), (b_id, b_seq) = adjacent_events(path)
    tamper(path, ("UPDATE events SET seq = -1 WHERE id = ?", (a_id,)),
           ("UPDATE events SET seq = ? WHERE id = ?", (a_seq, b_id)),
           ("UPDATE events SET seq = ? WHERE id = ?", (b_seq, a_id)))
    p = await first_problem(domain)
    assert (p.kind, p.event_id, p.case_id) == ("reordered", b_id, 1)
    assert "out of its recorded order" in p.what


async def test_events_renumbered_are_reordered(domain: Domain, clock: Clock) -> None:
    """The history is shown by event number: swapping two numbers swaps what came first."""
    await history(domain, clock)
    path = path_of(domain)
    (a_id, _a_seq), (b_id, _b_seq) = adjacent_events(path)
    tamper(path, ("UPDATE events SET id = -1 WHERE id = ?", (a_id,)),
           ("UPDATE events SET id = ? WHERE id = ?", (a_id, b_id)),
           ("UPDATE events SET id = ? WHERE id = -1", (b_id,)))
    p = await first_problem(domain)
    assert p.kind == "reordered" and p.case_id == 1 and "renumbered" in p.what


async def test_a_free_text_edited_or_removed_is_named(domain: Domain, clock: Clock) -> None:
    a, b, _c = await history(domain, clock)
    path = path_of(domain)
    note_a = rows(path, "SELECT id FROM events WHERE case_id = ? AND action = 'note'", (a,))[0][0]
    tamper(path, ("UPDATE event_texts SET text = 'Nobody was called.' WHERE event_id = ?", (note_a,)))
    p = await first_problem(domain)
    assert (p.kind, p.table, p.event_id, p.case_id) == ("edited", "event_texts", note_a, a)
    note_b = rows(path, "SELECT id FROM events WHERE case_id = ? AND action = 'note'", (b,))[0][0]
    tamper(path, ("DELETE FROM event_texts WHERE event_id = ?", (note_b,)))
    problems = await audit.verify(domain.db)
    assert [(p.kind, p.event_id) for p in problems] == [("edited", note_a), ("deleted", note_b)]
    assert "never erased" in problems[1].what


# --- who may do what ---------------------------------------------------------------------------

async def grant_id(domain: Domain, tg_id: int) -> int:
    return rows(path_of(domain), "SELECT id FROM grants WHERE tg_id = ?", (tg_id,))[0][0]


async def test_a_grant_edited_deleted_inserted_or_swapped_is_named(domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    path = path_of(domain)
    official, liaison = await grant_id(domain, OFFICIAL), await grant_id(domain, LIAISON)
    tamper(path, ("UPDATE grants SET role = 'supervisor' WHERE id = ?", (official,)))
    p = await first_problem(domain)
    assert (p.kind, p.table) == ("edited", "grants") and f"grants row {official}" in p.what
    assert "in role" in p.what
    tamper(path, ("UPDATE grants SET role = 'official' WHERE id = ?", (official,)))
    assert await audit.verify(domain.db) == []

    tamper(path, ("DELETE FROM grants WHERE id = ?", (liaison,)))
    p = await first_problem(domain)
    assert (p.kind, p.table) == ("deleted", "grants") and f"grants row {liaison} is recorded" in p.what


async def test_a_grant_inserted_is_named(domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    tamper(path_of(domain), ("INSERT INTO grants(id, tg_id, role, unit_id, source, granted_by, granted_at)"
                             " VALUES(99, ?, 'admin', NULL, 'config', NULL, ?)",
                             (STRANGER, to_db(datetime(2026, 11, 1, tzinfo=UTC)))))
    p = await first_problem(domain)
    assert (p.kind, p.table) == ("inserted", "grants") and "grants row 99 has no record" in p.what


async def test_grants_swapped_are_reordered(domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    official, supervisor = await grant_id(domain, OFFICIAL), await grant_id(domain, SUPERVISOR)
    tamper(path_of(domain), ("UPDATE grants SET id = -1 WHERE id = ?", (official,)),
           ("UPDATE grants SET id = ? WHERE id = ?", (official, supervisor)),
           ("UPDATE grants SET id = ? WHERE id = -1", (supervisor,)))
    p = await first_problem(domain)
    assert (p.kind, p.table) == ("reordered", "grants") and "rows were swapped" in p.what


async def test_a_revocation_undone_or_an_invitation_made_usable_again_is_named(
        domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    await domain.people.revoke(ADMIN, "@dara", None, None, clock())
    path = path_of(domain)
    assert await audit.verify(domain.db) == []
    tamper(path, "UPDATE grants SET revoked_at = NULL, revoked_by = NULL WHERE revoked_at IS NOT NULL")
    p = await first_problem(domain)
    assert p.kind == "edited" and "revoked_at" in p.what and "revoked_by" in p.what
    tamper(path, "UPDATE invitations SET used_at = NULL, used_by = NULL WHERE id = 1")
    problems = await audit.verify(domain.db)
    assert any(p.table == "invitations" and p.kind == "edited" and "used_at" in p.what for p in problems)


async def test_chat_bindings_edited_deleted_inserted_or_swapped_are_named(
        domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    path = path_of(domain)
    ck, sr, pp = (await domain.unit_id("pp-ck"), await domain.unit_id("sr"), await domain.unit_id("pp"))
    tamper(path, ("UPDATE chat_bindings SET chat_id = -555 WHERE unit_id = ?", (ck,)))
    p = await first_problem(domain)
    assert (p.kind, p.table) == ("edited", "chat_bindings") and "in chat_id" in p.what
    tamper(path, ("UPDATE chat_bindings SET chat_id = -100300 WHERE unit_id = ?", (ck,)))
    assert await audit.verify(domain.db) == []

    tamper(path, ("UPDATE chat_bindings SET unit_id = -1 WHERE unit_id = ?", (ck,)),
           ("UPDATE chat_bindings SET unit_id = ? WHERE unit_id = ?", (ck, sr)),
           ("UPDATE chat_bindings SET unit_id = ? WHERE unit_id = -1", (sr,)))
    assert (await first_problem(domain)).kind == "reordered"
    tamper(path, ("UPDATE chat_bindings SET unit_id = -1 WHERE unit_id = ?", (ck,)),
           ("UPDATE chat_bindings SET unit_id = ? WHERE unit_id = ?", (ck, sr)),
           ("UPDATE chat_bindings SET unit_id = ? WHERE unit_id = -1", (sr,)))
    assert await audit.verify(domain.db) == []

    tamper(path, ("INSERT INTO chat_bindings(unit_id, chat_id, bound_by, bound_at) VALUES(?, -777, ?, ?)",
                  (pp, STRANGER, to_db(clock()))))
    p = await first_problem(domain)
    assert (p.kind, p.table) == ("inserted", "chat_bindings") and f"chat_bindings row {pp}" in p.what
    tamper(path, ("DELETE FROM chat_bindings WHERE unit_id = ?", (pp,)),
           ("DELETE FROM chat_bindings WHERE unit_id = ?", (sr,)))
    p = await first_problem(domain)
    assert (p.kind, p.table) == ("deleted", "chat_bindings")
    tamper(path, ("UPDATE settings_kv SET value = '-888' WHERE key = 'wg_chat_id'"))
    problems = await audit.verify(domain.db)
    assert any(p.table == "settings_kv" and p.kind == "edited" for p in problems)


async def test_the_rights_log_itself_edited_or_deleted_is_named(domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    path = path_of(domain)
    record = rows(path, "SELECT id, seq FROM audit_log WHERE kind = 'grant' ORDER BY id DESC LIMIT 1")[0]
    tamper(path, ("UPDATE audit_log SET data = replace(data, '\"liaison\"', '\"official\"') WHERE id = ?",
                  (record[0],)))
    p = await first_problem(domain)
    assert (p.kind, p.table, p.position) == ("edited", "audit_log", record[1])
    assert f"record {record[0]} of the rights log" in p.what
    tamper(path, ("UPDATE audit_log SET data = replace(data, '\"official\"', '\"liaison\"') WHERE id = ?",
                  (record[0],)))
    assert await audit.verify(domain.db) == []
    tamper(path, ("DELETE FROM audit_log WHERE id = ?", (record[0],)))
    p = await first_problem(domain)
    assert p.kind == "deleted" and p.position == record[1]


# --- the whole chain rewritten: the published head ----------------------------------------------

def rewrite_everything(path: Path) -> None:
    """What a forger who knows the algorithm does: edit an event, then recompute every hash after
    it and the head row. Only a head kept elsewhere shows it."""
    con = pgtest.connect(path)
    con.execute("BEGIN IMMEDIATE")
    restore = pgtest.without_triggers(con)
    con.execute("UPDATE events SET actor_name = 'Someone else' WHERE action = 'resolve'")
    links = [("events", r) for r in con.execute(
        "SELECT seq, id, case_id, at, actor_id, actor_name, action, from_status, to_status, data,"
        " note_commit FROM events")]
    links += [("audit_log", r) for r in con.execute("SELECT seq, id, at, kind, data FROM audit_log")]
    chain, heads = audit.Chain(), {}
    for table, r in sorted(links, key=lambda x: x[1][0]):
        prev = chain.hash
        if table == "events":
            case_prev = heads.get(r[2], audit.GENESIS)
            chain.hash = heads[r[2]] = audit.link_hash(prev, audit.event_content(case_prev, *r[2:]))
            con.execute("UPDATE events SET case_prev = ?, prev = ?, hash = ? WHERE id = ?",
                        (case_prev, prev, chain.hash, r[1]))
        else:
            chain.hash = audit.link_hash(prev, audit.record_content(*r[2:]))
            con.execute("UPDATE audit_log SET prev = ?, hash = ? WHERE id = ?", (prev, chain.hash, r[1]))
        chain.seq += 1
    con.execute("UPDATE audit_head SET seq = ?, hash = ?", (chain.seq, chain.hash))
    for sql in restore:
        con.execute(sql)
    con.execute("COMMIT")
    con.close()


async def test_a_rewrite_of_the_whole_chain_shows_against_a_published_head(
        domain: Domain, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    await history(domain, clock)
    _seq, head = await audit.current_head(domain.db)
    published = audit.Published.parse(f"{head}@2026-11-02")
    problems, summary = await audit.check(domain.db, published)
    assert problems == [] and summary.published_at == summary.head_seq
    await domain.cases.apply(3, Action.NOTE, wg, Change(text="later"), clock())  # the chain grows
    problems, summary = await audit.check(domain.db, published)
    assert problems == [] and summary.published_at == summary.head_seq - 1
    assert await cli_verify_audit(domain.settings, argparse.Namespace(head=str(published))) == 0
    assert "the head published on 2026-11-02 is in it" in capsys.readouterr().out

    rewrite_everything(path_of(domain))
    assert await audit.verify(domain.db) == []  # consistent in itself: the limit of a local check
    p = (await audit.verify(domain.db, published))[0]
    assert p.kind == "rewritten" and "the head published on 2026-11-02" in p.what
    assert await cli_verify_audit(domain.settings, argparse.Namespace(head=str(published))) == 1
    assert "rewritten: the head published on 2026-11-02" in capsys.readouterr().out


async def test_a_check_can_be_called_off(domain: Domain, clock: Clock) -> None:
    """The bot stopping calls off a check running in its thread (``audit.check`` cancelled)."""
    await history(domain, clock)
    stop = threading.Event()
    stop.set()
    con = pgtest.connect(path_of(domain))
    try:
        with pytest.raises(audit.Stopped):
            audit.check_connection(con, None, stop)
        assert not con.in_transaction  # its read transaction ended
    finally:
        con.close()


def test_a_published_head_is_read_strictly() -> None:
    good = "ab" * 32
    assert audit.Published.parse(f" {good.upper()}@2026-11-02 ") == audit.Published(
        good, datetime(2026, 11, 2).date())
    for bad in ("", good, f"{good}@", f"{good[:-1]}@2026-11-02", f"{good}@2026-13-01",
                f"{'zz' * 32}@2026-11-02"):
        with pytest.raises(ValueError):
            audit.Published.parse(bad)


# --- no code path changes an event ----------------------------------------------------------------

CHANGES = re.compile(r"\b(UPDATE\s+(OR\s+\w+\s+)?(events|audit_log)\b|DELETE\s+FROM\s+(events|audit_log)\b"
                     r"|UPDATE\s+(OR\s+\w+\s+)?event_texts\b|REPLACE\s+INTO\s+(events|audit_log|event_texts)\b"
                     r"|INSERT\s+OR\s+REPLACE\s+INTO\s+(events|audit_log|event_texts)\b)", re.IGNORECASE)


def sql_strings() -> list[tuple[str, str]]:
    """Every string in the bot's code (SQL included) and every migration, with where it is."""
    out = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.value))
            elif isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values
                               if isinstance(v, ast.Constant) and isinstance(v.value, str))
                out.append((f"{path.relative_to(ROOT)}:{node.lineno}", text))
    for number, text in migrations():
        out.append((f"migration {number}", text))
    return out


def test_no_code_path_updates_or_deletes_an_event() -> None:
    strings = sql_strings()
    assert any("INSERT INTO events" in s for _w, s in strings)  # the search sees the SQL
    for forbidden in ("UPDATE events SET note = 'x'", "delete from audit_log where id = 1",
                      "UPDATE OR IGNORE event_texts SET text = ''", "REPLACE INTO events VALUES(1)"):
        assert CHANGES.search(forbidden), forbidden  # and would see a change
    assert [(where, m.group(0)) for where, s in strings if (m := CHANGES.search(s))] == []
    # Free texts are removed only by an erasure, in one place.
    removals = [w for w, s in strings if re.search(r"DELETE\s+FROM\s+event_texts", s, re.IGNORECASE)]
    assert len(removals) == 1 and removals[0].startswith("bot/domain/erasure.py")


async def test_the_triggers_refuse_changes(domain: Domain, clock: Clock) -> None:
    await history(domain, clock)
    for sql in ("UPDATE events SET action = 'x'", "DELETE FROM events", "UPDATE audit_log SET kind = 'x'",
                "DELETE FROM audit_log", "UPDATE event_texts SET text = 'x'",
                "UPDATE audit_head SET seq = 1", "DELETE FROM audit_head"):
        with pytest.raises(IntegrityError):
            await domain.db.write(sql)
    assert await audit.verify(domain.db) == []


# --- an existing database gets its chain at the upgrade ----------------------------------------------

async def test_the_upgrade_chains_the_events_already_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.db as dbmod

    path = tmp_path / "old.sqlite3"
    every = migrations(dbmod.POSTGRESQL if pgtest.enabled() else dbmod.SQLITE)
    number = next(n for n, text in every if text.startswith(dbmod.PYTHON_MIGRATION) and "audit_log" in text)
    monkeypatch.setattr(dbmod, "migrations", lambda *_store: every[:number - 1])
    db = await Database.open(path)
    at = "2026-10-01T02:00:00+00:00"
    for sql, params in [
        ("INSERT INTO units(id, key, name, kind) VALUES(1, 'pp', 'Phnom Penh', 'province')", ()),
        ("INSERT INTO categories(id, key, name) VALUES(1, 'land', 'Land')", ()),
        ("INSERT INTO cases(id, status, source, received_at, created_at, updated_at, category_id,"
         " place_unit_id, summary, citizen_name, created_by) VALUES(?, 'new', 'phone', ?, ?, ?, 1, 1,"
         " 'Road', 'Sok Dara', 1002)", (1, at, at, at)),
        ("INSERT INTO cases(id, status, source, received_at, created_at, updated_at, category_id,"
         " place_unit_id, summary, citizen_name, created_by) VALUES(?, 'new', 'phone', ?, ?, ?, 1, 1,"
         " 'Bridge', 'Keo Sina', 1002)", (2, at, at, at)),
        ("INSERT INTO events(case_id, at, actor_id, actor_name, action, to_status, note, data)"
         " VALUES(1, ?, 1002, 'Sophea', 'create', 'new', '', '{}')", (at,)),
        ("INSERT INTO events(case_id, at, actor_id, actor_name, action, to_status, note, data)"
         " VALUES(2, ?, 1002, 'Sophea', 'create', 'new', '', '{}')", (at,)),
        ("INSERT INTO events(case_id, at, actor_id, actor_name, action, from_status, to_status, note, data)"
         " VALUES(1, ?, 1002, 'Sophea', 'note', 'new', 'new', 'Sok Dara called: 012 345 678', '{}')", (at,)),
        ("INSERT INTO grants(tg_id, role, source, granted_at) VALUES(1001, 'admin', 'config', ?)", (at,)),
        ("INSERT INTO grants(tg_id, role, unit_id, source, granted_at, revoked_at) VALUES(2001, 'official',"
         " 1, 'invitation', ?, ?)", (at, at)),
        ("INSERT INTO invitations(token_hash, role, unit_id, created_by, created_at, expires_at, used_by,"
         " used_at) VALUES('h', 'official', 1, 1001, ?, ?, 2001, ?)", (at, at, at)),
        ("INSERT INTO chat_bindings(unit_id, chat_id, bound_by, bound_at) VALUES(1, -100100, 1001, ?)", (at,)),
        ("INSERT INTO settings_kv(key, value) VALUES('wg_chat_id', '-100900')", ()),
    ]:
        await db.write(sql, params)
    await db.close()

    monkeypatch.setattr(dbmod, "migrations", lambda *_store: every)
    db = await Database.open(path)
    try:
        assert await db.schema_version() == len(every)
        problems, summary = await audit.check(db)
        assert problems == [] and summary.events == 3 and summary.texts == 1
        assert summary.rows == 5  # two grants, an invitation, a binding, the working group's chat
        events = await db.all("SELECT e.id, e.seq, e.note_commit, t.text FROM events e"
                              " LEFT JOIN event_texts t ON t.event_id = e.id ORDER BY e.id")
        assert [(r[0], r[1]) for r in events] == [(1, 1), (2, 2), (3, 3)]
        assert events[2][3] == "Sok Dara called: 012 345 678" and events[2][2] is not None
        assert "Sok Dara" not in str([tuple(r) for r in await db.all("SELECT * FROM events")])
        kinds = {r[0] for r in await db.all("SELECT kind FROM audit_log")}
        assert kinds == {"baseline"}
    finally:
        await db.close()
    tamper(path, "UPDATE grants SET revoked_at = NULL")
    assert (await audit.verify(pgtest.target(path)))[0].kind == "edited"


# --- once a day ----------------------------------------------------------------------------------------

def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A November day's local time in Phnom Penh (UTC+7), as UTC."""
    return datetime(2026, 11, day, hour - 7, minute, tzinfo=UTC)


async def test_checked_and_published_once_a_day_and_the_admins_told_when_broken(
        domain: Domain, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    await history(domain, clock)
    caplog.set_level(logging.INFO, logger="bot.jobs.audit")
    assert await audit_job.daily(domain.cases, local(3, 7, 29)) == 0  # before the digest's time
    assert not await domain.db.all("SELECT * FROM audit_days")
    assert await audit_job.daily(domain.cases, local(3, 7, 30)) == 0  # whole: nobody told
    _seq, head = await audit.current_head(domain.db)
    assert f"audit head {head}@2026-11-03" in caplog.text
    assert [tuple(r) for r in await domain.db.all("SELECT day, head, problems FROM audit_days")] == [
        ("2026-11-03", head, 0)]
    # The working group's digest carries the head of the day; a supervisor's does not.
    digests = DigestService(domain.db, domain.settings, domain.units, domain.people)
    assert await digests.send_due(local(3, 7, 31)) == 2
    texts = {r[0]: r[1] for r in await domain.db.all(
        "SELECT chat_id, text FROM outbox WHERE text LIKE '📋%'")}
    assert f"<code>{head}@2026-11-03</code>" in texts[-100302]  # the bound working group's chat
    assert head not in texts[SUPERVISOR]

    tamper(path_of(domain), "UPDATE events SET to_status = 'closed' WHERE id = 2")
    assert await audit_job.daily(domain.cases, local(3, 12)) == 0  # once a day
    await domain.units.seen(ADMIN, "Admin", None, "km", clock(), private=True)  # reads Khmer
    caplog.clear()
    assert await audit_job.daily(domain.cases, local(4, 8)) == 1  # the admin, at once
    assert "audit chain broken: 1 problem(s); the first: edited: event 2 of case #1" in caplog.text
    notice = (await domain.db.all("SELECT chat_id, text FROM outbox WHERE chat_id = ? ORDER BY id DESC",
                                  (ADMIN,)))[0][1]
    assert "ព្រឹត្តិការណ៍ 2" in notice and "ករណី #1" in notice and "casebot verify-audit" in notice
    from tests.fakebotapi import parse_html
    parse_html(notice)  # valid Telegram HTML
    assert [tuple(r) for r in await domain.db.all("SELECT day, problems FROM audit_days ORDER BY day")] == [
        ("2026-11-03", 0), ("2026-11-04", 1)]
