"""The minister's Facebook page, end to end: Meta's signed webhooks into the real Runner (its HTTP
server, the inbox, the Messenger processor), requests and cases, and replies through the fake
Graph API's Send API, within Meta's 24-hour window (tests/fakegraph.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.cases import Actor, Change, Draft
from bot.domain.rules import Action, Status
from tests.conftest import ADMIN, OFFICIAL, WG, WG_CHAT, Clock
from tests.fakegraph import FakeGraph
from tests.harness import Bot, running_bot

PSID = "24000000000000001"
wg = Actor(WG, "Sophea", WG_CHAT)
official = Actor(OFFICIAL, "Dara")


@pytest.fixture
async def graph(clock: Clock) -> AsyncIterator[FakeGraph]:
    async with FakeGraph(clock) as fake:
        yield fake


@pytest.fixture
async def page(tmp_path: Path, clock: Clock, graph: FakeGraph) -> AsyncIterator[Bot]:
    async with running_bot(tmp_path, clock, graph=graph) as bot:
        yield bot


async def requests_of(bot: Bot) -> list[dict[str, object]]:
    rows = await bot.services.db.all("SELECT * FROM requests ORDER BY id")
    return [dict(r) for r in rows]


async def messenger_rows(bot: Bot) -> list[dict[str, object]]:
    rows = await bot.services.db.all("SELECT * FROM outbox WHERE kind = 'messenger' ORDER BY id")
    return [dict(r) for r in rows]


async def case_of(bot: Bot, request_id: int, source: str, clock: Clock) -> int:
    """What the working group's /inbox does (the queue's part): a case made of the request."""
    request = await bot.services.requests.get(request_id)
    assert request is not None and request.citizen_id is not None
    units = bot.services.units
    category = next(c.id for c in await units.categories() if c.key == "land")
    draft = Draft(source=source, category_id=category, place_unit_id=(await units.by_key("pp-dp")).id,
                  summary="Road flooded", description=request.text, citizen_name="Sok",
                  citizen_id=request.citizen_id,
                  request_id=request_id)
    case = await bot.services.cases.create(wg, draft, clock())
    await bot.services.db.write("UPDATE requests SET status = 'case', case_id = ? WHERE id = ?",
                                (case.id, request_id))
    return case.id


async def test_the_handshake_answers_meta_with_the_right_token_only(page: Bot, graph: FakeGraph) -> None:
    assert await graph.verify(graph.verify_token, "8723647") == (200, "8723647")
    for token in ("", "wrong", graph.verify_token + "x"):
        status, _ = await graph.verify(token)
        assert status == 403
    status, _ = await graph.verify(graph.verify_token, mode="unsubscribe")
    assert status == 403


async def test_a_message_becomes_a_request_and_the_citizen_hears_at_once(
        page: Bot, graph: FakeGraph, clock: Clock) -> None:
    mark = page.api.mark()
    status, _ = await graph.user_message(PSID, "The road in my village is flooded", attachments=[
        {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/photo.jpg"}}])
    assert status == 200
    await page.settle()
    (request,) = await requests_of(page)
    assert request["source"] == "facebook_message" and request["status"] == "pending"
    assert request["text"] == "The road in my village is flooded"
    assert str(request["key"]).startswith("fb:m:m_")
    data = json.loads(str(request["data"]))
    assert data["attachments"] == [{"type": "image", "url": "https://scontent.xx.fbcdn.net/v/photo.jpg"}]
    who = await page.services.citizens.by_address("messenger", PSID)
    assert who is not None and who.last_inbound_at == clock() and who.language == "en"
    (ack,) = graph.to(PSID)
    assert ack.text == "We received your message; the working group will give it a case number."
    assert ack.messaging_type == "RESPONSE" and ack.comment_id is None
    # The working group hears of new requests (one ping for a burst).
    assert any("New requests from citizens" in t for t in page.texts_since(mark, WG_CHAT))
    # The case, later: its number goes to the citizen through the Send API.
    n = await case_of(page, int(request["id"]), "facebook_message", clock)
    await page.settle()
    assert f"#{n}" in graph.to(PSID)[-1].text


async def test_khmer_words_get_khmer_answers(page: Bot, graph: FakeGraph) -> None:
    await graph.user_message(PSID, "ផ្លូវនៅភូមិខ្ញុំលិចទឹក")
    await page.settle()
    who = await page.services.citizens.by_address("messenger", PSID)
    assert who is not None and who.language == "km"
    (ack,) = graph.to(PSID)
    assert any("\u1780" <= c <= "\u17ff" for c in ack.text) and "We received" not in ack.text


async def test_forged_or_unsigned_webhooks_are_refused_and_change_nothing(
        page: Bot, graph: FakeGraph) -> None:
    body = json.dumps(graph.message_event(PSID, "forged")).encode()
    for signature in (None, "", "sha256=", "sha256=" + "0" * 64, graph.sign(body, "another-secret"),
                      graph.sign(body).replace("sha256=", "sha1=")):
        status, _ = await graph.post(body, signature)
        assert status == 403, signature
    # Signed, then altered on the way: refused too.
    status, _ = await graph.post(body.replace(b"forged", b"forgeD"), graph.sign(body))
    assert status == 403
    await page.settle()
    assert await requests_of(page) == []
    assert await page.services.citizens.by_address("messenger", PSID) is None
    assert (await page.services.db.one("SELECT COUNT(*) FROM inbox WHERE key LIKE 'fb:%'"))[0] == 0
    assert graph.delivered == []


async def test_a_webhook_delivered_twice_stores_and_answers_once(page: Bot, graph: FakeGraph) -> None:
    event = graph.message_event(PSID, "Please fix the bridge", mid="m_twice")
    assert (await graph.post(event))[0] == 200
    await page.settle()
    assert (await graph.post(event))[0] == 200  # Meta sends it again (no 200 seen, say)
    await page.settle()
    assert len(await requests_of(page)) == 1
    assert len(graph.to(PSID)) == 1
    # Echoes of the page's own messages, deliveries and reads are not requests.
    assert (await graph.post(graph.echo_event(PSID, "We received your message")))[0] == 200
    await page.settle()
    assert len(await requests_of(page)) == 1


async def test_a_comment_becomes_a_request_and_its_case_number_the_one_private_reply(
        page: Bot, graph: FakeGraph, clock: Clock) -> None:
    status, _ = await graph.comment("5550001", "Sok Dara", "No electricity in Kandal for a week",
                                    comment_id="77_1001", psid="24000000000000077")
    assert status == 200
    # The page's own comment, and an edited comment, are not requests.
    await graph.comment(graph.page_id, "The page", "Thank you, we will look into it")
    await graph.comment("5550001", "Sok Dara", "edited", verb="edited")
    await page.settle()
    (request,) = await requests_of(page)
    assert request["source"] == "facebook_comment" and request["key"] == "fb:c:77_1001"
    data = json.loads(str(request["data"]))
    assert data["comment_id"] == "77_1001" and data["post_id"] == f"{graph.page_id}_1"
    assert graph.delivered == []  # no reply to a comment until it has a case number
    who = await page.services.citizens.get(int(str(request["citizen_id"])))
    assert who is not None and who.name == "Sok Dara" and not who.address.isdigit()
    n = await case_of(page, int(str(request["id"])), "facebook_comment", clock)
    await page.settle()
    (reply,) = graph.delivered
    assert reply.comment_id == "77_1001" and f"#{n}" in reply.text
    # The private reply told the commenter's Messenger id: their later messages are theirs.
    who = await page.services.citizens.get(who.id)
    assert who is not None and who.address == "24000000000000077"
    await graph.user_message("24000000000000077", f"#{n}")
    await page.settle()
    assert f"#{n}" in graph.to("24000000000000077")[-1].text
    assert len(await requests_of(page)) == 1  # a case number is a question, not a request


async def test_the_24_hour_window_a_message_waits_for_the_citizen(
        page: Bot, graph: FakeGraph, clock: Clock) -> None:
    await graph.user_message(PSID, "The school roof leaks")
    await page.settle()
    (request,) = await requests_of(page)
    clock.advance(hours=25)
    mark = page.api.mark()
    n = await case_of(page, int(str(request["id"])), "facebook_message", clock)
    await page.settle()
    assert len(graph.to(PSID)) == 1  # only the first answer: the case number waits
    (_ack, held) = await messenger_rows(page)
    assert held["sent_at"] is None and held["failed_at"] is None
    assert "24-hour window" in str(held["last_error"])
    told = [t for t in page.texts_since(mark, WG_CHAT) if "waits" in t]
    assert len(told) == 1 and f"#{n}" in told[0]
    assert not [r for r in graph.refused if r[0] == "outside_window"]  # never tried outside it
    # More news meanwhile waits behind it; the working group is not told again.
    await page.services.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    mark = page.api.mark()
    await page.settle()
    assert len(graph.to(PSID)) == 1
    assert not [t for t in page.texts_since(mark, WG_CHAT) if "waits" in t]
    # The citizen writes again: what waited goes, in order, then the answer to the new words.
    await graph.user_message(PSID, f"#{n}")
    await page.settle()
    texts = [d.text for d in graph.to(PSID)]
    assert f"#{n}" in texts[1] and "Daun Penh" in texts[2], texts
    assert all(d.messaging_type == "RESPONSE" for d in graph.delivered)


async def test_an_expired_token_fails_the_message_with_its_reason_and_tells_the_admins_once(
        page: Bot, graph: FakeGraph, clock: Clock) -> None:
    await page.say(page.admin, page.private(page.admin), "/help")  # the admin has a private chat
    graph.token_expired = True
    mark = page.api.mark()
    await graph.user_message(PSID, "Water is dirty")
    await graph.user_message("24000000000000002", "Another problem")
    await page.settle()
    rows = await messenger_rows(page)
    assert len(rows) == 2 and all(r["failed_at"] is not None for r in rows)
    assert all("190" in str(r["last_error"]) for r in rows)
    told = [t for t in page.texts_since(mark, ADMIN) if "access token" in t]
    assert len(told) == 1 and "CASEBOT_FB_PAGE_TOKEN" in told[0]
    assert graph.page_token not in json.dumps(rows, default=str)


async def test_a_rate_limit_is_waited_out_and_not_counted_as_a_failure(
        page: Bot, graph: FakeGraph, clock: Clock) -> None:
    graph.fail_next("rate_limit", "server")
    await graph.user_message(PSID, "The market floods every rain")
    await page.settle()
    assert graph.delivered == []
    (row,) = await messenger_rows(page)
    assert row["failed_at"] is None and row["attempts"] == 0 and "613" in str(row["last_error"])
    clock.advance(minutes=2)  # the page's pause is over; then a server error: tried again later
    await page.settle()
    (row,) = await messenger_rows(page)
    assert row["failed_at"] is None and row["attempts"] == 1 and graph.delivered == []
    clock.advance(minutes=1)
    await page.settle()
    (ack,) = graph.delivered
    assert ack.text.startswith("We received your message")
    assert [key for key, _ in graph.refused] == ["rate_limit", "server"]


async def test_a_resolved_case_is_confirmed_by_the_citizen_with_a_quick_reply(
        page: Bot, graph: FakeGraph, clock: Clock) -> None:
    await graph.user_message(PSID, "The well is broken")
    await page.settle()
    (request,) = await requests_of(page)
    n = await case_of(page, int(str(request["id"])), "facebook_message", clock)
    cases = page.services.cases
    await cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await cases.apply(n, Action.ACCEPT, official, Change(), clock())
    await cases.apply(n, Action.RESOLVE, official, Change(text="A new pump was fitted."), clock())
    await page.settle()
    asked = graph.to(PSID)[-1]
    assert "A new pump was fitted." in asked.text
    payloads = asked.payloads()
    assert any(p.startswith(f"cz:y:{n}:") for p in payloads) and all(len(q["title"]) <= 20
                                                                     for q in asked.quick_replies)
    yes = next(p for p in payloads if p.startswith("cz:y:"))
    assert (await graph.quick_reply(PSID, yes))[0] == 200
    await page.settle()
    case = await cases.get(n)
    assert case.status is Status.CLOSED and case.confirmed_via == "citizen"
    # The same quick reply again (a new message, same payload): nothing changes twice.
    version = case.version
    await graph.quick_reply(PSID, yes)
    await page.settle()
    assert (await cases.get(n)).version == version
    assert "already settled" in graph.to(PSID)[-1].text
    # A payload for someone else's case, or forged: nothing, and a polite word.
    await graph.quick_reply(PSID, f"cz:y:{n + 1}:1")
    await graph.quick_reply(PSID, "cz:y:x")
    await page.settle()
    assert (await cases.get(n)).version == version


async def test_messages_in_a_row_join_the_request_that_waits(page: Bot, graph: FakeGraph) -> None:
    """People write in several short messages: while their request waits in the queue, the
    next ones join it (once each, even when an event is handled again), with one acknowledgement."""
    from bot.domain import origin
    from bot.messenger.events import parse
    from bot.messenger.inbound import MessengerInbound

    assert (await graph.user_message(PSID, "Hello"))[0] == 200
    assert (await graph.user_message(PSID, "the road in Phum Thmei is flooded", attachments=[
        {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/p.jpg"}}]))[0] == 200
    event = graph.message_event(PSID, "since Monday", mid="m_third")
    assert (await graph.post(event))[0] == 200
    await page.settle()
    (request,) = await requests_of(page)
    assert request["text"] == "Hello\nthe road in Phum Thmei is flooded\nsince Monday"
    assert "p.jpg" in str(request["data"])
    assert len(graph.to(PSID)) == 1  # one "we received your message"
    # The third event handled again (a crash before its inbox row was marked): nothing twice.
    (inbound,) = parse(json.dumps(event).encode(), graph.page_id, page.clock())
    with origin.handling(inbound.key):
        await MessengerInbound(page.services).handle(inbound, page.clock())
    (request,) = await requests_of(page)
    assert request["text"].count("since Monday") == 1
    # Once the working group decided it, the next message is a new request.
    await page.services.db.write("UPDATE requests SET status = 'not_request' WHERE id = ?", (request["id"],))
    assert (await graph.user_message(PSID, "Another problem: no water"))[0] == 200
    await page.settle()
    assert [r["text"] for r in await requests_of(page)][-1] == "Another problem: no water"
    assert len(graph.to(PSID)) == 2
