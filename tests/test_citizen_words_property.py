"""Whatever a citizen types outside the intake (property test): one answer in valid HTML, never a
traceback, and nothing changes — junk is no answer to a question and no request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.cases import Actor, Draft
from bot.inputs import KHMER_DIGITS
from tests.conftest import WG, WG_CHAT
from tests.fakebotapi import parse_html
from tests.harness import Bot
from tests.test_citizen_front_e2e import CITIZEN, OTHER, requests_of, submit

KHMER = str.maketrans("0123456789", KHMER_DIGITS)
STATE = ("citizens", "requests", "cases", "events", "citizen_asks", "attachments")

WORDS = st.one_of(
    st.text(max_size=300),
    st.integers(0, 10**30).map(str),
    st.integers(0, 10**12).map(lambda n: f"#{n}"),
    st.integers(0, 10**9).map(lambda n: str(n).translate(KHMER)),
    st.sampled_from(["#1", "1", "១", "#១", "#", "# 1", "#1 yes", "<b>", "&", "&amp;", "<a href='x'>",
                     "Skip", "Cancel", "Done", "yes", "no", "ចាស", "\u200b", "٣", "²"]),
).filter(lambda t: bool(t.strip()) and not t.lstrip().startswith("/") and len(t) <= 4096)


async def state(bot: Bot) -> tuple[object, ...]:
    db = bot.services.db
    return tuple([sorted(map(tuple, await db.all(f"SELECT * FROM {t}")), key=repr) for t in STATE])


@pytest.fixture
async def world(bot: Bot) -> AsyncIterator[Bot]:
    """A citizen with a request made into case #1 (theirs), and one who never sent anything."""
    await submit(bot, bot.api.user(CITIZEN, "Chan"), "The road is flooded")
    [request] = await requests_of(bot)
    case = await bot.services.cases.create(Actor(WG, "Sophea", WG_CHAT), Draft(
        source="telegram", category_id=request.data["category_id"],
        place_unit_id=request.data["place_unit_id"], summary="The road is flooded",
        citizen_name="Chan", citizen_id=request.citizen_id, request_id=request.id), bot.clock())
    assert case.id == 1
    bot.api.user(OTHER, "Sok", language_code="km")
    await bot.settle()
    yield bot


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=WORDS, who=st.sampled_from([CITIZEN, OTHER]))
async def test_any_words_get_one_answer_and_change_nothing(
        world: Bot, caplog: pytest.LogCaptureFixture, text: str, who: int) -> None:
    user = world.api.user(who, "Chan" if who == CITIZEN else "Sok", language_code="en" if who == CITIZEN else "km")
    before = await state(world)
    caplog.clear()
    m = await world.say(user, world.private(user), text)
    calls = world.api.calls[m:]
    assert not [r for r in caplog.records if r.name == "bot.errors"], text[:80]
    assert not [c.short() for c in calls if not c.ok], text[:80]
    sent = [c for c in calls if c.method == "sendMessage"]
    assert len(sent) == 1 and int(sent[0].params["chat_id"]) == who, (text[:80], [c.short() for c in sent])
    reply = str(sent[0].params["text"])
    parse_html(reply)
    assert "went wrong" not in reply and "Traceback" not in reply
    assert await state(world) == before, text[:80]
