"""Erasure of a citizen's personal data: on request (/erase, ``casebot erase``) and after the
retention period. The personal data is gone from every table, the statistics are the same, the
audit chain still verifies, and the card and /case say "[erased]"."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from bot import audit
from bot.audit_cli import cli_erase
from bot.db import table_names, to_db
from bot.domain.cases import Actor, CaseService, Change
from bot.domain.errors import Forbidden, Invalid
from bot.domain.model import AttachmentIn
from bot.domain.reports import ReportService, parse_period
from bot.domain.rules import Action, Status
from bot.jobs import audit as audit_job
from bot.render import card_text, history_lines
from tests import pgtest
from tests.conftest import ADMIN, DP_CHAT, OFFICIAL, SUPERVISOR, WG, WG_CHAT, Clock, Domain
from tests.fakebotapi import parse_html
from tests.harness import Bot

wg = Actor(WG, "Sophea", WG_CHAT)
dara = Actor(OFFICIAL, "Dara", OFFICIAL)
sokha = Actor(SUPERVISOR, "Sokha", SUPERVISOR)
admin = Actor(ADMIN, "Admin", ADMIN)
NAME, PHONE = "Neang Sreymom", "097 555 0199"
OTHER_NAME, OTHER_PHONE = "Keo Sina", "012 909 808"


async def closed_case(domain: Domain, clock: Clock, **draft: Any) -> int:
    n = await domain.new_case(clock, **draft)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(n, Action.ACCEPT, dara, Change(), clock())
    await domain.cases.apply(n, Action.RESOLVE, dara, Change(
        text="Met the citizen at the site and fixed it.",
        attachments=(AttachmentIn("photo", "PHOTO-EVIDENCE"),)), clock())
    await domain.cases.apply(n, Action.VERIFY, sokha, Change(outcome="confirmed"), clock())
    return n


async def the_case(domain: Domain, clock: Clock) -> tuple[int, int]:
    """A closed case full of the citizen's personal data, with a duplicate merged into it; and
    another citizen's case."""
    n = await domain.new_case(
        clock, summary=f"Fence moved by the neighbour of {NAME}", citizen_name=NAME,
        citizen_contact=PHONE, description=f"My name is {NAME}, call me on {PHONE}.",
        attachments=[AttachmentIn("photo", "PHOTO-INTAKE"), AttachmentIn("document", "DOC-ID", "id.pdf")])
    duplicate = await domain.new_case(clock, citizen_name="Sreymom's brother", citizen_contact="011 222 333")
    await domain.cases.apply(duplicate, Action.MERGE, wg, Change(into=n), clock())
    await domain.cases.apply(n, Action.NOTE, wg, Change(text=f"{NAME} called again from {PHONE}."), clock())
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(n, Action.ACCEPT, dara, Change(), clock())
    await domain.cases.apply(n, Action.RESOLVE, dara, Change(
        text=f"Spoke with {NAME}; the fence is back.",
        attachments=(AttachmentIn("photo", "PHOTO-EVIDENCE"),)), clock())
    await domain.cases.apply(n, Action.VERIFY, sokha, Change(outcome="confirmed"), clock())
    other = await closed_case(domain, clock, citizen_name=OTHER_NAME, citizen_contact=OTHER_PHONE)
    return n, other


async def figures(domain: Domain, clock: Clock) -> tuple[Any, ...]:
    """The period report, the public figures and each case's facts, as of the end of 2026."""
    reports = ReportService(domain.db, domain.units, domain.settings.tz)
    at = clock().replace(year=2027, month=1, day=1)
    return (await reports.report(parse_period("2026-11", domain.settings.tz), None, at),
            await reports.public(at), [facts(h) async for h in reports.histories(None)])


def facts(h: Any) -> tuple[Any, ...]:
    """A case's facts for the figures: where, what, when, and its states as they changed (an
    erasure is an event, but changes no status, deadline or unit)."""
    changes = []
    for state in h.states:
        key = (state.status, state.due, state.unit_id, state.bouncing)
        if not changes or changes[-1][1:] != key:
            changes.append((state.since, *key))
    return (h.id, h.unit_id, h.place_unit_id, h.category, h.received_at, tuple(changes))


def everything(path: Any) -> str:
    """Every row of every table, as text ("table: rows" a line)."""
    con = pgtest.connect(path)
    try:
        tables = sorted(table_names(con))
        return "\n".join(f"{t}: {[tuple(r) for r in con.execute(f'SELECT * FROM {t}').fetchall()]}"
                         for t in tables)
    finally:
        con.close()


def holding(dump: str, secret: str) -> list[str]:
    """The tables whose rows hold ``secret``."""
    return [line.split(":", 1)[0] for line in dump.splitlines() if secret in line]


async def test_erasure_removes_the_personal_data_and_keeps_the_figures_and_the_chain(
        domain: Domain, clock: Clock) -> None:
    n, other = await the_case(domain, clock)
    await domain.db.write("UPDATE outbox SET sent_at = ?", (to_db(clock()),))  # all delivered
    path = pgtest.target_of(domain.settings)
    assert NAME in everything(path) and PHONE in everything(path)
    before = await figures(domain, clock)
    clock.advance(days=1)

    case = await domain.cases.apply(n, Action.ERASE, admin, Change(text="The citizen's request of 3 Nov"),
                                    clock())
    assert case.status is Status.CLOSED and case.erased_at == clock()
    assert (case.citizen_name, case.citizen_contact, case.description) == ("", "", "")
    assert case.summary == "Fence moved by the neighbour of […]" and case.n_attachments == 0
    dump = everything(path)
    for secret in (NAME, PHONE, "PHOTO-INTAKE", "DOC-ID", "id.pdf"):
        assert holding(dump, secret) == [], secret
    # The citizen merged into the case is gone from it; the duplicate case itself is another
    # citizen's record, erased on its own.
    assert holding(dump, "011 222 333") == ["cases"]
    assert (await domain.cases.get(2)).citizen_contact == "011 222 333"
    assert OTHER_NAME in dump and OTHER_PHONE in dump  # another citizen's case is untouched
    assert await domain.cases.attachments(n) == [] and len(await domain.cases.attachments(other)) == 1
    assert await domain.cases.contacts(n) == ["[erased] (#2)"]

    # The figures are the same; the history keeps every event, the texts erased.
    assert await figures(domain, clock) == before
    events = await domain.cases.history(n)
    *earlier, erasure = events
    assert erasure.action == "erase" and erasure.actor_name == "Admin" and erasure.at == clock()
    assert erasure.note == "The citizen's request of 3 Nov"
    assert erasure.data["erased"] == {"attachments": 3, "texts": 2, "contacts": 1}
    assert [e.action for e in earlier] == ["create", "merge", "note", "assign", "accept", "resolve", "verify"]
    assert [e.erased for e in earlier] == [False, False, True, False, False, True, False]
    problems, summary = await audit.check(domain.db)
    assert problems == [] and summary.erased == 2

    # The card and /case say so, in valid Telegram HTML.
    tz = domain.settings.tz
    card = card_text(case, tz, clock(), personal=True)
    lines = history_lines(events, tz)
    for text in (card, "\n".join(lines)):
        plain, _entities = parse_html(text)
        assert "[erased]" in plain and NAME not in plain and PHONE not in plain
    assert "The citizen's personal data was erased on 3 Nov 2026." in card
    assert lines[2].endswith("· note: [erased]")

    # The export of events says so too.
    reports = ReportService(domain.db, domain.units, tz)
    notes = [row[-1] async for row in reports.export_events(None, None) if row[0] == n]
    assert notes == ["", "", "[erased]", "", "", "[erased]", "", "The citizen's request of 3 Nov"]

    # Nothing left: a second erasure is refused; a new note can be erased again.
    with pytest.raises(Invalid, match="holds no personal data any more"):
        await domain.cases.apply(n, Action.ERASE, admin, Change(text="again"), clock())
    await domain.cases.apply(n, Action.NOTE, wg, Change(text=f"{NAME} wrote once more."), clock())
    await domain.cases.apply(n, Action.ERASE, admin, Change(text="The note of 4 Nov"), clock())
    events = await domain.cases.history(n)
    assert [e.note for e in events if e.action == "erase"] == ["The citizen's request of 3 Nov",
                                                               "The note of 4 Nov"]
    assert NAME not in everything(path) and await audit.verify(domain.db) == []


async def test_only_admins_erase_and_a_refusal_is_recorded(domain: Domain, clock: Clock) -> None:
    n, _other = await the_case(domain, clock)
    for who in (wg, dara, sokha):
        with pytest.raises(Forbidden):
            await domain.cases.apply(n, Action.ERASE, who, Change(text="please"), clock())
    refused = await domain.db.all("SELECT tg_id, action, case_id FROM refusals ORDER BY id")
    assert [tuple(r) for r in refused] == [(WG, "erase", n), (OFFICIAL, "erase", n), (SUPERVISOR, "erase", n)]
    with pytest.raises(Invalid, match="at least 3 characters"):
        await domain.cases.apply(n, Action.ERASE, admin, Change(text="x"), clock())
    assert (await domain.cases.get(n)).citizen_name == NAME  # nothing changed


async def test_the_command_line_erases_a_list_of_cases(
        domain: Domain, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    n, other = await the_case(domain, clock)
    before = await figures(domain, clock)
    settings = domain.settings
    assert await cli_erase(settings, argparse.Namespace(cases=["abc"], reason="request")) == 2
    assert await cli_erase(settings, argparse.Namespace(cases=["1"], reason=" x ")) == 2
    assert "--reason" in capsys.readouterr().err
    assert (await domain.cases.get(n)).citizen_name == NAME  # nothing was done

    rc = await cli_erase(settings, argparse.Namespace(cases=[str(n), f"#{other}", "99"],
                                                      reason="Court order 12/2026"))
    assert rc == 1  # #99 does not exist
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"#{n}: personal data erased", f"#{other}: personal data erased"]
    assert "#99:" in captured.err
    for case_id in (n, other):
        erasure = (await domain.cases.history(case_id))[-1]
        assert erasure.action == "erase" and erasure.note == "Court order 12/2026"
        assert re.fullmatch(r"casebot erase \(.+\)", erasure.actor_name)
    assert await figures(domain, clock) == before
    assert await audit.verify(domain.db) == []


async def test_the_retention_period_erases_closed_cases_once_it_has_passed(
        domain: Domain, clock: Clock) -> None:
    settings = dataclasses.replace(domain.settings, erase_closed_after_days=30)
    cases = CaseService(domain.db, settings, domain.units, domain.people, clock)
    old, _other = await the_case(domain, clock)  # #1, #2 merged into it, #3
    still_open = await domain.new_case(clock, citizen_name="Open Case")
    clock.advance(days=20)
    recent = await closed_case(domain, clock, citizen_name="Recent Close")
    before = await figures(domain, clock)
    outbox_before = (await domain.db.one("SELECT MAX(id) FROM outbox") or [0])[0]

    clock.advance(days=11)  # 30 days and 23 hours after the first cases were closed …
    local_morning = clock().replace(hour=1)  # … at 08:00 in Phnom Penh: past the digest's time
    assert await audit_job.daily(cases, local_morning) == 0
    erased = {r[0] for r in await domain.db.all("SELECT id FROM cases WHERE erased_at IS NOT NULL")}
    assert erased == {old, 2, 3}  # closed (or merged) more than 30 days ago
    assert still_open not in erased and recent not in erased
    for n in (old, 2, 3):
        erasure = (await domain.cases.history(n))[-1]
        assert (erasure.action, erasure.actor_name) == ("erase", "casebot")
        assert erasure.note == "Retention period: closed more than 30 days ago."
    # Recorded, not announced case by case: only the cards are refreshed.
    kinds = {r[0] for r in await domain.db.all("SELECT kind FROM outbox WHERE id > ?", (outbox_before,))}
    assert kinds <= {"edit"}  # (an edit per card posted; none was here)
    assert await figures(domain, clock) == before
    assert await audit.verify(domain.db) == []
    clock.advance(days=20)
    assert await audit_job.daily(cases, clock().replace(hour=1)) == 0
    assert {r[0] for r in await domain.db.all("SELECT id FROM cases WHERE erased_at IS NOT NULL")} == {
        old, 2, 3, recent}


async def test_no_retention_period_by_default(domain: Domain, clock: Clock) -> None:
    assert domain.settings.erase_closed_after_days is None
    await the_case(domain, clock)
    clock.advance(days=3650)
    assert await audit_job.daily(domain.cases, clock().replace(hour=1)) == 0
    assert await domain.db.all("SELECT id FROM cases WHERE erased_at IS NOT NULL") == []


# --- in Telegram ---------------------------------------------------------------------------------------

async def test_e2e_erase_with_confirmation(bot: Bot) -> None:
    from tests.test_e2e_inputs import make_case

    n = await make_case(bot, citizen_name=NAME, citizen_contact=PHONE,
                        attachments=[AttachmentIn("photo", "PHOTO-INTAKE")])
    assert NAME in bot.card(DP_CHAT, n)["text"]
    admin_chat, wg_chat = bot.private(bot.admin), bot.private(bot.wg)

    m = await bot.say(bot.wg, wg_chat, f"/erase {n} the citizen asked")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    m = await bot.say(bot.admin, admin_chat, f"/erase {n}")
    assert "Give the reason after the case number" in bot.texts_since(m)[0]
    assert "/erase &lt;case&gt; &lt;reason&gt;" in bot.sent_since(m)[0].params["text"]

    m = await bot.say(bot.admin, admin_chat, f"/erase {n} the citizen's request of 2 Nov")
    question = bot.last_bot_message(admin_chat["id"])
    assert f"Erase the personal data of case #{n} (Road flooded)?" in question["text"]
    await bot.press_button(bot.admin, question, "Cancel")
    assert bot.last_bot_message(admin_chat["id"])["text"] == "Cancelled: nothing was erased."
    assert (await bot.services.cases.get(n)).citizen_name == NAME
    m = await bot.press(bot.admin, admin_chat["id"], question["message_id"], f"er:{n}")  # an old button
    assert bot.answers_since(m) == ["That button is not valid any more."]

    await bot.say(bot.admin, admin_chat, f"/erase {n} the citizen's request of 2 Nov")
    question = bot.last_bot_message(admin_chat["id"])
    m = await bot.press_button(bot.admin, question, "Erase")
    assert bot.last_bot_message(admin_chat["id"])["text"] == f"The personal data of case #{n} is erased."
    card = bot.card(DP_CHAT, n)["text"]  # edited in place
    assert "[erased]" in card and NAME not in card and PHONE not in card
    told = [parse_html(t)[0] for t in bot.texts_since(m, WG_CHAT)]
    assert any(f"#{n} (Road flooded) · personal data erased by Admin: the citizen's request of 2 Nov"
               in t for t in told)

    m = await bot.say(bot.wg, wg_chat, f"/case {n}")
    text = bot.texts_since(m)[0]
    assert "[erased]" in text and NAME not in text and "personal data erased" in text
    assert bot.sent_since(m, None, "sendPhoto") == []  # the file ids are gone
    assert await audit.verify(bot.services.db) == []


async def test_e2e_erase_is_in_the_admins_help(bot: Bot) -> None:
    m = await bot.say(bot.admin, bot.private(bot.admin), "/help")
    assert "/erase &lt;case&gt; &lt;reason&gt;" in bot.sent_since(m)[0].params["text"]
    m = await bot.say(bot.wg, bot.private(bot.wg), "/help")
    assert "/erase" not in bot.texts_since(m)[0]


def test_retention_is_configured_in_days(tmp_path: Path) -> None:
    from bot.config import ConfigError, parse_settings
    from tests.conftest import config_dict

    data = config_dict(tmp_path / "db.sqlite3")
    assert parse_settings({**data, "privacy": {"erase_closed_after_days": 1825}}).erase_closed_after_days == 1825
    for bad, why in (({"erase_closed_after_days": 0}, "at least 1"), ({"erase_after": 5}, "unknown key"),
                     ({"erase_closed_after_days": "5y"}, "whole number")):
        with pytest.raises(ConfigError, match=why):
            parse_settings({**data, "privacy": bad})
