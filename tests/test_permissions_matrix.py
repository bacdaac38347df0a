"""Every command and button × every kind of person, through Telegram: allowed or refused exactly
as the permission table says, and nothing changes on a refusal."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.domain.cases import Actor, Change
from bot.domain.rules import PERMISSIONS, READ_ROLES, Action, Role
from tests.conftest import ADMIN, DP_CHAT, OFFICIAL, WG_CHAT
from tests.harness import JSON, Bot, unknown_answer
from tests.test_e2e_inputs import make_case

REVOKED = 2003
NOT_ALLOWED = "You are not allowed to do that."
UNKNOWN = "I don't know you yet."

# Who may do what, written out by hand (the test of the tables, not a copy of them).
# "unit": pp-dp (the case's unit); supervisor of pp (above it); official and liaison elsewhere.
EXPECTED: dict[str, set[str]] = {
    "assign":    {"admin", "wg", "supervisor"},
    "accept":    {"admin", "official"},
    "need_info": {"admin", "official"},
    "return":    {"admin", "official"},
    "resolve":   {"admin", "official"},
    "status":    {"admin", "official"},
    "note":      {"admin", "wg", "official", "supervisor"},
    "resolve_cmd": {"admin", "official"},
    "reopen":    {"admin", "wg", "supervisor"},
    "verify":    {"admin", "wg", "supervisor"},
    "confirm_button": {"admin", "wg", "supervisor"},
    "answer":    {"admin", "wg"},
    "view":      {"admin", "wg", "official", "supervisor"},
    "new":       {"admin", "wg"},
    "forward":   {"admin", "wg"},
    "merge":     {"admin", "wg"},
    # On a case forwarded to the Ministry of Land (its liaison's institution):
    "ack":       {"admin", "liaison"},
    "decline":   {"admin", "liaison"},
    "resolve_away": {"admin", "liaison"},
    "outcome":   {"admin", "wg"},
    "view_away": {"admin", "wg", "supervisor", "liaison"},
}
PERSONAS = ["admin", "wg", "official", "other_official", "supervisor", "liaison", "unknown", "revoked"]


def test_expected_matrix_agrees_with_the_permission_table() -> None:
    role_of = {"admin": Role.ADMIN, "wg": Role.WORKING_GROUP, "official": Role.OFFICIAL,
               "supervisor": Role.SUPERVISOR, "liaison": Role.LIAISON}
    as_action = {"assign": Action.ASSIGN, "accept": Action.ACCEPT, "need_info": Action.NEED_INFO,
                 "return": Action.RETURN, "resolve": Action.RESOLVE, "status": Action.ACCEPT,
                 "note": Action.NOTE, "resolve_cmd": Action.RESOLVE, "reopen": Action.REOPEN,
                 "verify": Action.VERIFY, "confirm_button": Action.VERIFY,
                 "answer": Action.PROVIDE_INFO, "new": Action.CREATE, "forward": Action.FORWARD,
                 "merge": Action.MERGE, "ack": Action.ACKNOWLEDGE, "decline": Action.DECLINE,
                 "resolve_away": Action.RESOLVE, "outcome": Action.OUTCOME}
    # On a ministry unit's case a liaison has no role; on a forwarded case no official has one.
    for name, action in as_action.items():
        roles = set(PERMISSIONS[action])
        roles -= {Role.OFFICIAL} if name in ("ack", "decline", "resolve_away", "outcome") else {Role.LIAISON}
        roles -= {Role.CITIZEN}  # a citizen's rights on their own case: below
        assert {role_of[p] for p in EXPECTED[name]} == roles, name
    assert {role_of[p] for p in EXPECTED["view"]} == set(READ_ROLES) - {Role.LIAISON}
    assert {role_of[p] for p in EXPECTED["view_away"]} == set(READ_ROLES) - {Role.OFFICIAL}
    assert set(EXPECTED) == set(ATTEMPTS)
    # A citizen, on their own case only: answer a question passed on, confirm or dispute the
    # resolution, withdraw, have their data erased. Nothing else (tests/test_citizens_domain.py).
    assert {a for a, roles in PERMISSIONS.items() if Role.CITIZEN in roles} == {
        Action.PROVIDE_INFO, Action.VERIFY, Action.REOPEN, Action.WITHDRAW, Action.ERASE}


@dataclass
class Persona:
    user: JSON
    chat: JSON  # where they type commands


async def personas(bot: Bot) -> dict[str, Persona]:
    revoked = bot.api.user(REVOKED, "Kosal", username="kosal")
    people = bot.services.people
    token = await people.invite(ADMIN, "pp-dp", "official", bot.clock())
    await people.redeem(token, REVOKED, "Kosal", "kosal", "en", bot.clock())
    await people.revoke(ADMIN, "@kosal", None, None, bot.clock())
    return {
        "admin": Persona(bot.admin, bot.private(bot.admin)),
        "wg": Persona(bot.wg, bot.wg_chat),
        "official": Persona(bot.official, bot.dp_chat),
        "other_official": Persona(bot.other, bot.sr_chat),
        "supervisor": Persona(bot.supervisor, bot.private(bot.supervisor)),
        "liaison": Persona(bot.liaison, bot.private(bot.liaison)),
        "unknown": Persona(bot.stranger, bot.dp_chat),
        "revoked": Persona(revoked, bot.dp_chat),
    }


async def fingerprint(bot: Bot) -> tuple[int, ...]:
    db = bot.services.db
    out = []
    for sql in ("SELECT COALESCE(SUM(version), 0) FROM cases", "SELECT COUNT(*) FROM events",
                "SELECT COUNT(*) FROM cases", "SELECT COUNT(*) FROM attachments"):
        row = await db.one(sql)
        assert row is not None
        out.append(int(row[0]))
    return tuple(out)


async def case_in(bot: Bot, status: str) -> int:
    cases = bot.services.cases
    admin = Actor(ADMIN, "Admin", None)
    official = Actor(OFFICIAL, "Dara", DP_CHAT)
    n = await make_case(bot, unit=None if status in ("new", "forwarded") else "pp-dp")
    if status == "waiting_info":
        await cases.apply(n, Action.NEED_INFO, official, Change(text="which plot?"), bot.clock())
    if status == "resolved":  # resolved by the official, so that others may verify
        await cases.apply(n, Action.RESOLVE, official, Change(text="cleared the drain fully"), bot.clock())
    if status == "forwarded":
        await cases.apply(n, Action.FORWARD, admin, Change(text="land title matter", unit_key="mlm",
                                                           channel="letter"), bot.clock())
    await bot.settle()
    return n


@dataclass(frozen=True)
class Attempt:
    status: str            # the case is prepared in this status
    command: str = ""      # typed by the persona in their chat ({n}: the case number)
    button: str = ""       # or: pressed on the case's card (or message) in a chat
    private: bool = False  # typed in a private chat with the bot, whoever types it
    where: int = DP_CHAT   # the chat of the pressed message

    async def run(self, bot: Bot, p: Persona, n: int) -> int:
        if self.command:
            chat = bot.private(p.user) if self.private else p.chat
            return await bot.say(p.user, chat, self.command.format(n=n))
        msg = bot.card(DP_CHAT, n) if self.where == DP_CHAT else bot.last_bot_message(self.where)
        return await bot.press(p.user, self.where, msg["message_id"], bot.button(msg, self.button))


ATTEMPTS: dict[str, Attempt] = {
    "assign": Attempt("new", "/assign {n} pp-dp"),
    "accept": Attempt("assigned", button="Accept"),
    "need_info": Attempt("assigned", button="Need info"),
    "return": Attempt("assigned", button="Not ours"),
    "resolve": Attempt("assigned", button="Resolved"),
    "status": Attempt("assigned", "/status {n} in_progress"),
    "note": Attempt("assigned", "/note {n} checked the file"),
    "resolve_cmd": Attempt("assigned", "/resolve {n} cleared the drain and the road"),
    "reopen": Attempt("resolved", "/reopen {n} water is back again"),
    "verify": Attempt("resolved", "/verify {n} confirmed"),
    "confirm_button": Attempt("resolved", button="Citizen confirmed", where=WG_CHAT),
    "answer": Attempt("waiting_info", "/answer {n} plot 12"),
    "view": Attempt("assigned", "/case {n}"),
    "new": Attempt("assigned", "/new", private=True),
    "forward": Attempt("assigned", "/forward {n} mlm letter their land registry decides"),
    "merge": Attempt("assigned", "/merge {n} 1"),
    "ack": Attempt("forwarded", "/ack {n} MLM-2026-17"),
    "decline": Attempt("forwarded", "/decline {n} this is the province's matter"),
    "resolve_away": Attempt("forwarded", "/resolve {n} title corrected in the land registry"),
    "outcome": Attempt("forwarded", "/outcome {n} the ministry corrected the land title"),
    "view_away": Attempt("forwarded", "/case {n}"),
}


def allowed_outcome(bot: Bot, m: int, what: str) -> bool:
    texts = bot.texts_since(m) + bot.answers_since(m)
    if NOT_ALLOWED in texts or any(t.startswith(UNKNOWN) for t in texts):
        return False
    if what == "view":
        return any("History" in t for t in texts)
    if what == "new":
        return any("Where did the request come from?" in t for t in texts)
    if what in ("need_info", "return", "resolve"):  # the bot asks for the words first
        return any(c.params.get("reply_markup", {}).get("force_reply") for c in bot.sent_since(m))
    return True


@pytest.mark.parametrize("what", list(ATTEMPTS))
async def test_matrix(bot: Bot, what: str) -> None:
    await make_case(bot)  # #1: what /merge merges into
    people = await personas(bot)
    attempt = ATTEMPTS[what]
    for name in PERSONAS:
        p = people[name]
        n = await case_in(bot, attempt.status)
        before = await fingerprint(bot)
        m = await attempt.run(bot, p, n)
        texts = bot.texts_since(m) + bot.answers_since(m)
        expected = name in EXPECTED[what]
        assert allowed_outcome(bot, m, what) == expected, (what, name, texts)
        if not expected:
            want = (unknown_answer(p.user["id"], alert=bool(attempt.button)) if name in ("unknown", "revoked")
                    else NOT_ALLOWED)
            assert texts == [want], (what, name, texts)  # one short reply, nothing else
            assert await fingerprint(bot) == before, (what, name)
        if expected and (attempt.button or attempt.private):
            await bot.say(p.user, bot.private(p.user) if attempt.private else p.chat, "/cancel")
