"""A citizen on Messenger following their case: answering the unit's question, "No, because…",
withdrawing; and the page's path holding under faults (an event handled again after a crash, a
webhook not stored, Graph refusing), without a secret in any log line."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp import ClientSession

from bot.domain.cases import Change
from bot.domain.rules import Action, Status
from tests import test_facebook_e2e
from tests.conftest import DP_CHAT, Clock
from tests.fakegraph import FakeGraph
from tests.harness import Bot
from tests.test_facebook_e2e import PSID, case_of, messenger_rows, official, requests_of, wg

graph = test_facebook_e2e.graph  # the fake Graph API and the bot beside it: the same fixtures
page = test_facebook_e2e.page


async def a_case(page: Bot, graph: FakeGraph, clock: Clock, text: str = "The bridge is broken") -> int:
    await graph.user_message(PSID, text)
    await page.settle()
    request = (await requests_of(page))[-1]
    n = await case_of(page, int(str(request["id"])), "facebook_message", clock)
    await page.services.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await page.services.cases.apply(n, Action.ACCEPT, official, Change(), clock())
    await page.settle()
    return n


async def test_the_units_question_is_answered_on_messenger(page: Bot, graph: FakeGraph, clock: Clock) -> None:
    n = await a_case(page, graph, clock)
    cases = page.services.cases
    await cases.apply(n, Action.NEED_INFO, official, Change(text="Which village exactly?"), clock())
    await cases.apply(n, Action.ASK_CITIZEN, wg, Change(), clock())
    await page.settle()
    asked = graph.to(PSID)[-1]
    assert "Which village exactly?" in asked.text and f"cz:a:{n}" in asked.payloads()
    # "Answer": how to answer; then their words go to the unit as the answer.
    await graph.quick_reply(PSID, f"cz:a:{n}", "Answer")
    await page.settle()
    assert f"#{n}" in graph.to(PSID)[-1].text
    mark = page.api.mark()
    await graph.user_message(PSID, "Prek Leap, near the pagoda")
    await page.settle()
    case = await cases.get(n)
    assert case.status is Status.IN_PROGRESS
    assert (await cases.history(n))[-1].note == "Prek Leap, near the pagoda"
    assert any("Answer from the citizen" in t and "Prek Leap" in t for t in page.texts_since(mark, DP_CHAT))
    assert len(await requests_of(page)) == 1  # an answer is no new request


async def test_no_because_reopens_the_case_to_the_same_unit(page: Bot, graph: FakeGraph, clock: Clock) -> None:
    n = await a_case(page, graph, clock)
    cases = page.services.cases
    await cases.apply(n, Action.RESOLVE, official, Change(text="The bridge was repaired."), clock())
    await page.settle()
    no = next(p for p in graph.to(PSID)[-1].payloads() if p.startswith(f"cz:n:{n}:"))
    await graph.quick_reply(PSID, no, "No, because…")
    await page.settle()
    assert f"What is still wrong with case #{n}?" in graph.to(PSID)[-1].text
    await graph.user_message(PSID, "Only half of it was repaired, the rest is still broken")
    await page.settle()
    case = await cases.get(n)
    assert case.status is not Status.RESOLVED and case.unit_key == "pp-dp"
    last = (await cases.history(n))[-1]
    assert last.action == "reopen" and "half of it" in last.note


async def test_an_event_handled_again_after_a_crash_changes_nothing_twice(
        page: Bot, graph: FakeGraph, clock: Clock) -> None:
    n = await a_case(page, graph, clock)
    cases = page.services.cases
    await cases.apply(n, Action.RESOLVE, official, Change(text="The bridge was rebuilt."), clock())
    await page.settle()
    yes = next(p for p in graph.to(PSID)[-1].payloads() if p.startswith(f"cz:y:{n}:"))
    event = graph.message_event(PSID, "Yes", quick_reply=yes, mid="m_yes")
    await graph.post(event)
    await page.settle()
    assert (await cases.get(n)).status is Status.CLOSED
    version, sent = (await cases.get(n)).version, len(graph.delivered)
    # The process died after the change, before the inbox row was marked done: handled again.
    db = page.services.db
    from bot.messenger.events import parse

    (item,) = [e.item() for e in parse(json.dumps(event).encode(), graph.page_id, clock())]
    await db.write("UPDATE inbox SET state = 'pending', payload = ? WHERE key = ?", (item.payload, item.key))
    row = await db.one("SELECT id, chat_key FROM inbox WHERE key = ?", (item.key,))
    assert row is not None
    page.runner.scheduler.push([(int(row[0]), str(row[1]))])
    await page.settle()
    assert (await cases.get(n)).version == version
    assert len(graph.delivered) == sent
    # The same for a new request: stored once, acknowledged once.
    first = graph.message_event(PSID, "The street lights are out", mid="m_lights")
    await graph.post(first)
    await page.settle()
    (item,) = [e.item() for e in parse(json.dumps(first).encode(), graph.page_id, clock())]
    await db.write("UPDATE inbox SET state = 'pending', payload = ? WHERE key = ?", (item.payload, item.key))
    row = await db.one("SELECT id, chat_key FROM inbox WHERE key = ?", (item.key,))
    assert row is not None
    page.runner.scheduler.push([(int(row[0]), str(row[1]))])
    await page.settle()
    assert [r["key"] for r in await requests_of(page)].count("fb:m:m_lights") == 1
    assert sum("We received your message" in d.text for d in graph.to(PSID)) == 2  # bridge, lights


async def test_a_webhook_is_answered_200_only_once_stored(
        page: Bot, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    event = graph.message_event(PSID, "Rubbish is not collected", mid="m_store")
    real = page.runner.inbox.add  # type: ignore[union-attr]

    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(page.runner.inbox, "add", broken)
    status, _ = await graph.post(event)
    assert status == 503  # not stored: Meta sends it again
    monkeypatch.setattr(page.runner.inbox, "add", real)
    assert (await graph.post(event))[0] == 200
    await page.settle()
    assert [r["key"] for r in await requests_of(page)] == ["fb:m:m_store"]


async def test_a_person_who_cannot_be_reached_fails_with_the_reason(page: Bot, graph: FakeGraph) -> None:
    graph.fail_next("unavailable")
    await graph.user_message(PSID, "Help please")
    await page.settle()
    (row,) = await messenger_rows(page)
    assert row["failed_at"] is not None and "551" in str(row["last_error"])
    assert "isn't available" in str(row["last_error"])


async def test_no_secret_reaches_a_log_line(page: Bot, graph: FakeGraph, clock: Clock,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    graph.fail_next("server", "rate_limit")
    await graph.user_message(PSID, "Secret test")
    await graph.post(graph.message_event(PSID, "forged"), signature="sha256=00")
    await page.settle()
    clock.advance(minutes=5)
    await page.settle()
    graph.token_expired = True
    await graph.user_message(PSID, "Another")
    await page.settle()
    logged = caplog.text + json.dumps(await messenger_rows(page), default=str)
    for secret in (graph.page_token, graph.app_secret, graph.verify_token):
        assert secret not in logged
    assert "Secret test" not in caplog.text  # a citizen's words are not logged either


async def test_the_page_runs_beside_long_polling_without_telegrams_webhook(
        page: Bot, graph: FakeGraph) -> None:
    assert not page.api.calls_of("setWebhook") and page.api.calls_of("deleteWebhook")
    base = graph.webhook_url.rsplit("/", 1)[0]
    async with ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with session.post(f"{base}/telegram", data=b"{}") as response:
            assert response.status in (404, 405)
