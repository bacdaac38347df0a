"""Webhook mode: Telegram posts updates to the bot's one HTTP server; only Telegram (the secret
token) is heard, an update is answered 200 only once it is in the inbox, and /healthz tells an
operator how the bot is."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import WebhookSettings, parse_settings
from bot.service import Runner
from bot.web import SECRET_HEADER, WebServer
from tests.conftest import WG, Clock, register_people
from tests.fakebotapi import FakeBotAPI
from tests.harness import e2e_settings

SECRET = "s3cret-Token_1"


@pytest.fixture
async def hooked(tmp_path: Path, clock: Clock) -> AsyncIterator[tuple[Runner, FakeBotAPI, str]]:
    with FakeBotAPI() as api:
        settings = replace(e2e_settings(api, tmp_path), webhook=WebhookSettings(
            url="https://bot.example.org/telegram/hook", secret_token=SECRET, port=1))
        # port 0: the system picks a free one (the config itself asks for 1-65535)
        settings = replace(settings, webhook=replace(settings.webhook, port=0))  # type: ignore[arg-type]
        runner = Runner(settings, api.token, clock=clock, rate_limiter=False, jobs=False, webhook=True)
        await runner.start()
        try:
            await register_people(runner.services.people, clock())
            web = runner._web
            assert isinstance(web, WebServer)
            yield runner, api, f"http://127.0.0.1:{web.port}"
        finally:
            await runner.stop()


def update(update_id: int, text: str, user: int = WG) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1790000000, "text": text,
        "chat": {"id": user, "type": "private", "first_name": "Sophea"},
        "from": {"id": user, "is_bot": False, "first_name": "Sophea"},
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}}


async def stored(runner: Runner, update_id: int) -> bool:
    row = await runner.services.db.one("SELECT 1 FROM inbox WHERE key = ?", (f"tg:{update_id}",))
    return row is not None


async def post(base: str, body: object, secret: str | None = SECRET) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    async with aiohttp.ClientSession() as session, session.post(
            f"{base}/telegram/hook", data=json.dumps(body), headers=headers) as response:
        return response.status, await response.text()


async def test_the_webhook_is_set_with_the_secret_and_the_updates_asked_for(
        hooked: tuple[Runner, FakeBotAPI, str]) -> None:
    _runner, api, _base = hooked
    call = api.calls_of("setWebhook")[-1]
    assert call.params["url"] == "https://bot.example.org/telegram/hook"
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query", "my_chat_member"]
    assert not api.calls_of("getUpdates")  # no polling beside the webhook


async def test_without_the_secret_token_nothing_is_taken(hooked: tuple[Runner, FakeBotAPI, str]) -> None:
    runner, api, base = hooked
    for secret in (None, "", "wrong", SECRET + "x"):
        status, _ = await post(base, update(41, "/help"), secret)
        assert status == 403
    assert not await stored(runner, 41)
    assert not api.calls_of("sendMessage")


async def test_an_update_is_stored_before_the_200_and_answered_once(
        hooked: tuple[Runner, FakeBotAPI, str]) -> None:
    runner, api, base = hooked
    status, _ = await post(base, update(42, "/whoami"))
    assert status == 200
    assert await stored(runner, 42)  # in the inbox by the time Telegram hears 200
    status, _ = await post(base, update(42, "/whoami"))  # Telegram sends it again
    assert status == 200
    for _ in range(500):
        if not await runner.inbox.backlog() and runner.scheduler.idle:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.01)
    answers = [c for c in api.calls_of("sendMessage") if int(c.params["chat_id"]) == WG]
    assert len(answers) == 1


async def test_what_is_not_an_update_gets_400_and_changes_nothing(
        hooked: tuple[Runner, FakeBotAPI, str]) -> None:
    runner, _api, base = hooked
    for body in ({}, [], "text", {"update_id": "7"}, None):
        status, _ = await post(base, body)
        assert status == 400
    assert await runner.inbox.backlog() == 0  # type: ignore[union-attr]


async def test_healthz_reports_the_database_the_backlog_and_the_sender(
        hooked: tuple[Runner, FakeBotAPI, str]) -> None:
    runner, _api, base = hooked
    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as response:
        assert response.status == 200
        report = await response.json()
    assert report == {"ok": True, "database": "ok", "inbox_backlog": 0, "sender": "running"}
    await runner.services.sender.stop()
    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as response:
        assert response.status == 503
        assert (await response.json())["sender"] == "stopped"


def test_the_webhook_config_requires_https_and_a_secret(tmp_path: Path) -> None:
    from bot.config import ConfigError
    from tests.conftest import config_dict

    def parse(webhook: dict[str, Any]) -> object:
        data = config_dict(tmp_path / "db.sqlite3")
        data["webhook"] = webhook
        return parse_settings(data).webhook

    ok = parse({"url": "https://bot.example.org/hook", "secret_token": "abc_DEF-1"})
    assert isinstance(ok, WebhookSettings) and ok.path == "/hook" and ok.port == 8080
    for bad, key in (({"url": "http://bot.example.org/hook", "secret_token": "a"}, "webhook.url"),
                     ({"url": "https://bot.example.org/hook"}, "webhook.secret_token"),
                     ({"url": "https://x.org/h", "secret_token": "has space"}, "webhook.secret_token"),
                     ({"url": "https://x.org/h", "secret_token": "a", "port": 70000}, "webhook.port"),
                     ({"url": "https://x.org/h", "secret_token": "a", "max_connections": 101},
                      "webhook.max_connections")):
        with pytest.raises(ConfigError) as err:
            parse(bad)
        assert str(err.value).startswith(key)
        assert "has space" not in str(err.value)
