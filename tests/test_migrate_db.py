"""``casebot migrate-db``: an SQLite database with every kind of record moves to PostgreSQL, the
row counts match table by table, the audit chain verifies there, and the bot goes on there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot import audit, cli, migrate_db
from bot.config import parse_settings
from bot.db import Database
from bot.domain import access
from bot.domain.cases import Actor, CaseService, Change
from bot.domain.people import PeopleService
from bot.domain.rules import Action
from bot.domain.units import UnitService
from tests import pgtest
from tests.conftest import ADMIN, OFFICIAL, WG, Clock, Domain, config_dict, register_people
from tests.test_erasure import closed_case, the_case

pytestmark = pytest.mark.skipif(not pgtest.enabled(), reason=f"needs PostgreSQL ({pgtest.ENV})")

AT = "2026-11-02T02:00:00+00:00"
RAW = [  # the tables no service above writes to
    ("INSERT INTO inbox(key, chat_key, payload, received_at) VALUES('tg:1', 'c:1', '{}', ?)", (AT,)),
    ("INSERT INTO applied_updates(key, at) VALUES('tg:1/1', ?)", (AT,)),
    ("INSERT INTO conversations(name, key, state) VALUES('new', '[1, 1]', '\"title\"')", ()),
    ("INSERT INTO conversation_data(kind, id, data) VALUES('user', 1, ?)", (b"\x80\x04\x95\x00binary",)),
    ("INSERT INTO digest_log(chat_id, day, queued_at) VALUES(-100900, '2026-11-02', ?)", (AT,)),
    ("INSERT INTO digest_mute(tg_id, since) VALUES(4001, ?)", (AT,)),
    ("INSERT INTO unreachable_chats(chat_id, since, reason) VALUES(-100555, ?, 'blocked')", (AT,)),
    ("INSERT INTO chat_languages(chat_id, lang) VALUES(-100100, 'km')", ()),
    ("INSERT INTO case_cards(case_id, chat_id, message_id, unit_id, posted_at) VALUES(1, -100101, 7, 3, ?)",
     (AT,)),
    ("INSERT INTO refusals(at, tg_id, action, case_id) VALUES(?, 3001, 'assign', 1)", (AT,)),
    ("INSERT INTO audit_days(day, seq, head, checked_at, problems) VALUES('2026-11-01', 1, 'h', ?, 0)", (AT,)),
]


async def citizens_in_the_loop(domain: Domain, clock: Clock) -> None:
    """A citizen, their request made into a case (which refers to the request, which refers to
    the case), a resolution waiting for their word, a message to them on Messenger."""
    from bot.domain.citizens import CitizenStore, queue_to_citizen
    from bot.domain.requests import RequestService

    requests = RequestService(domain.db, domain.cases.tell_requests_waiting)
    async with domain.db.transaction() as tx:
        who = await CitizenStore(domain.db).find_or_create(tx, "messenger", "PSID-7", clock(), name="Sok")
        rid = await requests.receive(tx, "fb:m:7", "facebook_message", who.id, "The road is broken", clock())
        queue_to_citizen(tx, who, "We received your message.", clock())
    n = await domain.new_case(clock, citizen_id=who.id, request_id=rid)
    await domain.db.write("UPDATE requests SET status = 'case', case_id = ? WHERE id = ?", (n, rid))
    wg, official = Actor(WG, "Wg Member", None), Actor(OFFICIAL, "Dara Official", None)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(n, Action.ACCEPT, official, Change(), clock())
    await domain.cases.apply(n, Action.RESOLVE, official, Change(text="The road was repaired."), clock())
    await domain.db.write("INSERT INTO leases(name, holder, expires_at, renewed_at) VALUES('jobs', 'h:1:a', ?, ?)",
                          (AT, AT))


async def sqlite_database(tmp_path: Path, clock: Clock) -> Path:
    """A file holding a bit of everything: cases merged, resolved, verified and erased, notes,
    files, bindings, invitations, grants revoked, views, refusals, the inbox, conversations."""
    path = tmp_path / "old" / "casebot.sqlite3"
    settings = parse_settings(config_dict(path))
    db = await pgtest.open_file(Database, path)  # type: ignore[misc]  # SQLite itself
    try:
        units = UnitService(db, settings)
        await units.sync_from_config()
        people = PeopleService(db, settings, units)
        await people.sync_config(clock())
        await register_people(people, clock())
        cases = CaseService(db, settings, units, people, clock)
        domain = Domain(db, units, people, cases, None, settings)  # type: ignore[arg-type]
        n, _other = await the_case(domain, clock)
        await closed_case(domain, clock)
        await cases.apply(n, Action.ERASE, Actor(ADMIN, "Admin", None), Change(text="asked"), clock())
        await units.bind_chat("pp-ck", -100300, ADMIN, True, clock())
        await people.invite(ADMIN, "sr", "official", clock())
        await access.record(db, access.CLI, [n], access.VIA_EXPORT, clock())
        await citizens_in_the_loop(domain, clock)
        for sql, params in RAW:
            await db.write(sql, params)
        assert await audit.verify(db) == []
    finally:
        await db.close()
    return path


async def test_every_table_moves_with_its_rows_and_the_chain_verifies(
        tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    source = await sqlite_database(tmp_path, clock)
    url = pgtest.url_for(tmp_path / "target")
    code = await asyncio.to_thread(cli.main, ["migrate-db", "--from", str(source), "--to", url])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "the same counts on both" in out.out and "the chain is whole" in out.out

    import sqlite3

    con = sqlite3.connect(source)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        counts = {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
        blob = con.execute("SELECT data FROM conversation_data").fetchone()[0]
    finally:
        con.close()
    assert [t for t in tables if counts[t] == 0] == []
    assert migrate_db.count_rows(url, tables) == counts

    db = await Database.open(url)
    try:
        assert await audit.verify(db) == []
        assert (await db.one("SELECT data FROM conversation_data"))[0] == blob  # type: ignore[index]
        # The bot goes on there: a new case takes the next number, its event the next position.
        settings = parse_settings(config_dict(tmp_path / "target"))
        units = UnitService(db, settings)
        people = PeopleService(db, settings, units)
        cases = CaseService(db, settings, units, people, clock)
        domain = Domain(db, units, people, cases, None, settings)  # type: ignore[arg-type]
        n = await domain.new_case(clock)
        assert n == counts["cases"] + 1
        assert await audit.verify(db) == []
    finally:
        await db.close()

    # A second time into the same database: refused, nothing copied.
    code = await asyncio.to_thread(cli.main, ["migrate-db", "--from", str(source), "--to", url])
    assert code == 2 and "already holds data" in capsys.readouterr().err
    assert migrate_db.count_rows(url, ["cases"]) == {"cases": counts["cases"] + 1}


async def test_bad_arguments_change_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = await asyncio.to_thread(cli.main, ["migrate-db", "--from", str(tmp_path / "none.sqlite3"),
                                              "--to", pgtest.url_for(tmp_path / "t")])
    assert code == 2 and "no database at" in capsys.readouterr().err
    (tmp_path / "f.sqlite3").write_bytes(b"")
    code = await asyncio.to_thread(cli.main, ["migrate-db", "--from", str(tmp_path / "f.sqlite3"),
                                              "--to", "mysql://x"])
    assert code == 2 and "postgresql://" in capsys.readouterr().err
