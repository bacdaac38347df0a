"""A forged button press naming another unit's case is a refusal, whatever version it names: the
actor's rights are checked before the version. A legitimate press on an old card still gets the
current card."""

from __future__ import annotations

from bot.domain.cases import Actor, Change
from bot.domain.rules import Action
from tests.conftest import ADMIN, DP_CHAT, OFFICIAL, SR_CHAT
from tests.harness import Bot
from tests.test_e2e_inputs import make_case
from tests.test_permissions_matrix import fingerprint

NOT_ALLOWED = "You are not allowed to do that."
STALE = "This case has changed. Here is its current card."


async def refreshes_queued(bot: Bot) -> int:
    row = await bot.services.db.one("SELECT COUNT(*) FROM outbox WHERE kind = 'refresh'")
    assert row is not None
    return int(row[0])


async def refusals(bot: Bot) -> list[tuple[int, str, int | None]]:
    rows = await bot.services.db.all("SELECT tg_id, action, case_id FROM refusals ORDER BY id")
    return [(int(r[0]), str(r[1]), r[2]) for r in rows]


async def test_forged_press_on_another_units_case_is_refused_and_recorded(bot: Bot) -> None:
    own = await make_case(bot)               # #1, Daun Penh's: the official's own card
    other = await make_case(bot, unit="sr")  # #2, Siem Reap's
    version = (await bot.services.cases.get(other)).version
    own_card = bot.card(DP_CHAT, own)
    sr_card = bot.card(SR_CHAT, other)
    before, refreshes = await fingerprint(bot), await refreshes_queued(bot)
    # Direct buttons (done at once) and buttons that ask for words first, with a wrong version,
    # the right one, and one from the future.
    forged = [f"c:{other}:7:acc", f"c:{other}:{version - 1}:acc", f"c:{other}:{version}:acc",
              f"c:{other}:99:res", f"c:{other}:{version}:ret", f"c:{other}:0:inf"]
    for data in forged:
        m = await bot.press(bot.official, DP_CHAT, own_card["message_id"], data)
        assert bot.answers_since(m) == [NOT_ALLOWED], data
        assert bot.sent_since(m) == [], data  # no question asked, no card posted
        assert bot.sent_since(m, None, "editMessageText") == [], data  # no card redrawn
    assert await fingerprint(bot) == before
    assert await refreshes_queued(bot) == refreshes
    assert bot.card(SR_CHAT, other) == sr_card
    actions = ["accept", "accept", "accept", "resolve", "return", "need_info"]
    assert await refusals(bot) == [(OFFICIAL, a, other) for a in actions]

    m = await bot.say(bot.admin, bot.private(bot.admin), "/refusals")
    [listing] = bot.texts_since(m)
    assert listing.count(f"Dara · accept #{other}") == 3
    for action in ("resolve", "return as not ours", "ask for information"):
        assert f"Dara · {action} #{other}" in listing


async def test_a_legitimate_press_on_an_old_card_gets_the_current_card(bot: Bot) -> None:
    n = await make_case(bot)
    card = bot.card(DP_CHAT, n)
    accept, resolve = bot.button(card, "Accept"), bot.button(card, "Resolved")
    # The working group changes the case while the old card is still on the screen.
    await bot.services.cases.apply(n, Action.NOTE, Actor(ADMIN, "Admin", None),
                                   Change(text="the citizen called again"), bot.clock())
    await bot.services.cases.apply(n, Action.ACCEPT, Actor(OFFICIAL, "Dara", DP_CHAT), Change(),
                                   bot.clock())
    await bot.settle()
    before = await fingerprint(bot)
    for data in (accept, resolve):
        m = await bot.press(bot.official, DP_CHAT, card["message_id"], data)
        assert bot.answers_since(m) == [STALE], data
        edits = bot.sent_since(m, DP_CHAT, "editMessageText")
        assert edits and "In progress" in edits[-1].params["text"], data  # the card is redrawn
    assert await fingerprint(bot) == before
    assert await refusals(bot) == []  # an old card is no refusal
