"""The case lifecycle without Telegram: transitions, rights, events, outbox, deadlines."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.db import IntegrityError, table_names
from bot.domain.cases import Actor, AttachmentIn, Change
from bot.domain.errors import (
    CaseNotFound,
    Forbidden,
    Invalid,
    InvalidTransition,
    NoChat,
    PersonNotFound,
    StaleCase,
    UnitNotFound,
)
from bot.domain.rules import PERMISSIONS, TRANSITIONS, Action, Role, Status
from tests.conftest import (
    ADMIN,
    DP_CHAT,
    OFFICIAL,
    OTHER_OFFICIAL,
    SR_CHAT,
    STRANGER,
    SUPERVISOR,
    WG,
    WG_CHAT,
    Clock,
    Domain,
)

wg = Actor(WG, "Wg Member", WG_CHAT)
official = Actor(OFFICIAL, "Dara Official", DP_CHAT)
elsewhere = Actor(OTHER_OFFICIAL, "Siem Reap Official", SR_CHAT)
stranger = Actor(STRANGER, "Stranger", None)


def test_tables_cover_every_action() -> None:
    assert set(TRANSITIONS) == set(Action)
    assert set(PERMISSIONS) == set(Action)
    for action, roles in PERMISSIONS.items():
        # An admin may do everything a person may do; the bot's own steps are the bot's.
        assert (Role.ADMIN in roles) != (roles == {Role.SYSTEM}), action


async def counts(d: Domain) -> tuple[int, int, int]:
    rows = [await d.db.one(f"SELECT COUNT(*) FROM {t}") for t in ("cases", "events", "outbox")]
    return tuple(int(r[0]) for r in rows if r is not None)  # type: ignore[return-value]


async def test_walk_from_creation_to_resolution(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    case = await domain.cases.get(n)
    assert case.status is Status.NEW and case.unit_id is None
    assert case.received_at == clock()

    clock.advance(hours=1)
    case = await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    assert case.status is Status.ASSIGNED and case.unit_key == "pp-dp"
    assert case.due_at == clock() + timedelta(days=15)

    case = await domain.cases.apply(n, Action.ACCEPT, official, Change(), clock())
    assert case.status is Status.IN_PROGRESS and case.assignee_id == OFFICIAL

    case = await domain.cases.apply(n, Action.NEED_INFO, official, Change(text="Land title number?"), clock())
    assert case.status is Status.WAITING_INFO
    case = await domain.cases.apply(n, Action.PROVIDE_INFO, wg, Change(text="Title 123/45"), clock())
    assert case.status is Status.IN_PROGRESS

    evidence = (AttachmentIn("photo", "PHOTO-1"),)
    case = await domain.cases.apply(
        n, Action.RESOLVE, official, Change(text="Fence moved back, both sides signed", attachments=evidence),
        clock(),
    )
    assert case.status is Status.RESOLVED and case.resolved_at == clock()
    history = await domain.cases.history(n)
    assert [e.action for e in history] == ["create", "assign", "accept", "need_info", "provide_info", "resolve"]
    assert history[-1].from_status == "in_progress" and history[-1].to_status == "resolved"
    assert [a.purpose for a in await domain.cases.attachments(n)] == ["evidence"]

    case = await domain.cases.apply(n, Action.REOPEN, wg, Change(text="Citizen says fence is back"), clock())
    assert case.status is Status.ASSIGNED and case.unit_key == "pp-dp" and case.resolved_at is None


async def test_each_change_queues_notifications_in_the_same_transaction(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    rows = await domain.db.all("SELECT kind, chat_id, text FROM outbox ORDER BY id")
    kinds = [(r["kind"], r["chat_id"]) for r in rows]
    assert ("card", DP_CHAT) in kinds
    assert ("text", WG_CHAT) in kinds
    assert "#1 (Boundary dispute with neighbour) · assigned by Wg Member → Daun Penh" in rows[-1]["text"]


async def test_user_text_in_notifications_is_escaped(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock, summary="<b>bold</b> & co")
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(n, Action.NEED_INFO, official, Change(text="<script>x</script>"), clock())
    texts = [r["text"] for r in await domain.db.all("SELECT text FROM outbox WHERE kind='text'")]
    assert any("&lt;b&gt;bold&lt;/b&gt; &amp; co" in t for t in texts)
    assert any("&lt;script&gt;" in t for t in texts)
    assert not any("<script>" in t for t in texts)


@pytest.mark.parametrize(
    ("who", "action", "change"),
    [
        (official, Action.ASSIGN, Change(unit_key="pp-dp")),   # officials do not dispatch
        (stranger, Action.NOTE, Change(text="hello")),
        (elsewhere, Action.ACCEPT, Change()),                  # another unit's member
        (wg, Action.ACCEPT, Change()),                         # the unit accepts, not the WG
        (elsewhere, Action.RESOLVE, Change(text="done it all, really")),
    ],
)
async def test_refusals_change_nothing(domain: Domain, clock: Clock, who: Actor, action: Action,
                                       change: Change) -> None:
    n = await domain.new_case(clock)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    before = await counts(domain)
    version = (await domain.cases.get(n)).version
    with pytest.raises(Forbidden):
        await domain.cases.apply(n, action, who, change, clock())
    assert await counts(domain) == before
    assert (await domain.cases.get(n)).version == version


async def test_invalid_transition_and_bad_input(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    with pytest.raises(InvalidTransition):
        await domain.cases.apply(n, Action.REOPEN, wg, Change(text="not resolved yet"), clock())
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    before = await counts(domain)
    with pytest.raises(Invalid):
        await domain.cases.apply(n, Action.RESOLVE, official, Change(text="done"), clock())  # < 10 chars
    with pytest.raises(Invalid):
        await domain.cases.apply(n, Action.RETURN, official, Change(text=""), clock())
    with pytest.raises(CaseNotFound):
        await domain.cases.apply(999, Action.ACCEPT, official, Change(), clock())
    with pytest.raises(UnitNotFound):
        await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="nowhere"), clock())
    with pytest.raises(NoChat):
        await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-ck"), clock())
    with pytest.raises(Invalid):
        await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="mlm"), clock())  # external
    with pytest.raises(PersonNotFound):
        await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="sr", assignee="@nobody"), clock())
    assert await counts(domain) == before
    assert (await domain.cases.get(n)).unit_key == "pp-dp"


async def test_stale_version_is_refused(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    case = await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(n, Action.ACCEPT, official, Change(), clock(), expected_version=case.version)
    with pytest.raises(StaleCase):
        await domain.cases.apply(n, Action.NEED_INFO, official, Change(text="which plot?"), clock(),
                                 expected_version=case.version)


async def test_not_ours_returns_to_queue_with_reason(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    case = await domain.cases.apply(n, Action.RETURN, official, Change(text="This is in Chamkar Mon"), clock())
    assert case.status is Status.NEW and case.unit_id is None and case.due_at is None
    last = (await domain.cases.history(n))[-1]
    assert last.note == "This is in Chamkar Mon" and last.data["unit"] == "pp-dp"


async def test_urgent_deadline_and_assignee(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock, priority="urgent")
    with pytest.raises(Invalid, match="not an official of Siem Reap"):
        await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="sr", assignee="@dara"), clock())
    case = await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp", assignee="@Dara"), clock())
    assert case.due_at == clock() + timedelta(days=3)
    assert case.assignee_id == OFFICIAL and case.assignee_name == "Dara"


async def test_events_are_immutable(domain: Domain, clock: Clock) -> None:
    await domain.new_case(clock)
    with pytest.raises(IntegrityError):
        await domain.db.write("UPDATE events SET action = 'x'")
    with pytest.raises(IntegrityError):
        await domain.db.write("DELETE FROM events")


async def test_rights_come_from_roles_not_from_the_chat(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    admin = Actor(ADMIN, "Admin", None)
    await domain.cases.apply(n, Action.ASSIGN, admin, Change(unit_key="pp-dp"), clock())
    # Speaking in Daun Penh's chat does not make the Siem Reap official a member of Daun Penh.
    with pytest.raises(Forbidden):
        await domain.cases.apply(n, Action.ACCEPT, Actor(OTHER_OFFICIAL, "Vanna", DP_CHAT), Change(), clock())
    # The Daun Penh official may act from a private chat.
    case = await domain.cases.apply(n, Action.ACCEPT, Actor(OFFICIAL, "Dara", OFFICIAL), Change(), clock())
    assert case.status is Status.IN_PROGRESS
    # Revoked: refused at once.
    await domain.people.revoke(ADMIN, "@dara", None, None, clock())
    with pytest.raises(Forbidden):
        await domain.cases.apply(n, Action.NOTE, official, Change(text="still here"), clock())
    refused = await domain.db.all("SELECT tg_id, action, case_id FROM refusals ORDER BY id")
    assert [tuple(r) for r in refused] == [(OTHER_OFFICIAL, "accept", n), (OFFICIAL, "note", n)]


async def test_supervisor_reads_subtree_and_reassigns_within_it(domain: Domain, clock: Clock) -> None:
    sup = Actor(SUPERVISOR, "Sokha", None)
    n = await domain.new_case(clock)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    case, personal = await domain.cases.visible(sup, n, clock())
    assert personal is True
    assert (await domain.cases.open_cases(sup, 0, clock()))[1] == 1
    with pytest.raises(Forbidden):
        await domain.cases.apply(n, Action.ASSIGN, sup, Change(unit_key="sr"), clock())
    with pytest.raises(Forbidden):
        await domain.cases.apply(n, Action.ACCEPT, sup, Change(), clock())
    case = await domain.cases.apply(n, Action.ASSIGN, sup, Change(unit_key="pp"), clock())
    assert case.unit_key == "pp"
    other = await domain.new_case(clock, place_unit_id=await domain.unit_id("sr"))
    await domain.cases.apply(other, Action.ASSIGN, wg, Change(unit_key="sr"), clock())
    with pytest.raises(Forbidden):
        await domain.cases.visible(sup, other, clock())
    with pytest.raises(Forbidden):
        await domain.cases.apply(other, Action.ASSIGN, sup, Change(unit_key="pp"), clock())
    # A Phnom Penh case assigned to Siem Reap still concerns Phnom Penh: readable, but it is
    # not the supervisor's to move.
    third = await domain.new_case(clock)
    await domain.cases.apply(third, Action.ASSIGN, wg, Change(unit_key="sr"), clock())
    assert (await domain.cases.visible(sup, third, clock()))[0].id == third
    with pytest.raises(Forbidden):
        await domain.cases.apply(third, Action.ASSIGN, sup, Change(unit_key="pp"), clock())


async def test_personal_data_only_where_allowed(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    assert (await domain.cases.visible(official, n, clock()))[1] is True
    assert (await domain.cases.visible(wg, n, clock()))[1] is True
    # The working group member asking in another unit's group: the group must not see it.
    assert (await domain.cases.visible(Actor(WG, "Wg Member", SR_CHAT), n, clock()))[1] is False
    with pytest.raises(Forbidden):
        await domain.cases.visible(elsewhere, n, clock())


async def test_open_cases_scope_and_overdue(domain: Domain, clock: Clock) -> None:
    a = await domain.new_case(clock)
    b = await domain.new_case(clock)
    await domain.cases.apply(a, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(b, Action.ASSIGN, wg, Change(unit_key="sr"), clock())
    mine, total = await domain.cases.open_cases(official, 0, clock())
    assert [c.id for c in mine] == [a] and total == 1
    _all, total = await domain.cases.open_cases(wg, 0, clock())
    assert total == 2
    assert (await domain.cases.open_cases(official, 0, clock(), overdue_only=True))[1] == 0
    clock.advance(days=16)
    overdue, total = await domain.cases.open_cases(official, 0, clock(), overdue_only=True)
    assert [c.id for c in overdue] == [a]


async def test_migrations_are_tracked(domain: Domain) -> None:
    assert await domain.db.schema_version() >= 1
    payload = await domain.db.one("SELECT payload FROM outbox LIMIT 1")
    assert payload is None or isinstance(json.loads(payload[0]), dict)


async def test_no_field_for_political_affiliation_or_the_like(domain: Domain) -> None:
    banned = ("party", "politic", "affiliation", "ethnic", "religion", "vote")
    tables = await domain.db.in_thread(table_names)
    for table in tables:
        columns = await domain.db.in_thread(
            lambda c, t=table: [d[0] for d in c.execute(f"SELECT * FROM {t} LIMIT 0").description])
        assert columns
        for name in columns:
            assert not any(b in name.lower() for b in banned), (table, name)
