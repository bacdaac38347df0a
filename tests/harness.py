"""End-to-end harness: the real Application, polling a FakeBotAPI on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram.ext import Application

from bot.app import SERVICES, Services
from bot.config import FacebookSecrets, Settings, parse_settings
from bot.service import Runner
from tests.conftest import (
    ADMIN,
    DP_CHAT,
    LIAISON,
    OFFICIAL,
    OTHER_OFFICIAL,
    SR_CHAT,
    STRANGER,
    SUPERVISOR,
    WG,
    WG_CHAT,
    Clock,
    config_dict,
    register_people,
)
from tests.fakebotapi import Call, FakeBotAPI
from tests.fakegraph import FakeGraph

JSON = dict[str, Any]
_FIRST_UPDATE_IDS = itertools.count(1, 1_000_000)  # each fake a run starts its own ids


@dataclass
class Bot:
    """The running bot and the people and chats of a small ministry."""

    api: FakeBotAPI
    app: Application  # type: ignore[type-arg]
    settings: Settings
    clock: Clock

    runner: Runner

    def __post_init__(self) -> None:
        u = self.api.user
        self.admin = u(ADMIN, "Admin", username="admin")
        self.wg = u(WG, "Sophea", username="sophea_wg")
        self.official = u(OFFICIAL, "Dara", username="dara")
        self.other = u(OTHER_OFFICIAL, "Vanna", username="vanna")
        self.stranger = u(STRANGER, "Stranger")
        self.supervisor = u(SUPERVISOR, "Sokha", username="sokha")
        self.liaison = u(LIAISON, "Rith", username="rith")
        self.wg_chat = self.api.group_chat(WG_CHAT, "Working group")
        self.dp_chat = self.api.group_chat(DP_CHAT, "Daun Penh district")
        self.sr_chat = self.api.group_chat(SR_CHAT, "Siem Reap province")

    @property
    def services(self) -> Services:
        services: Services = self.app.bot_data[SERVICES]
        return services

    def private(self, user: JSON) -> JSON:
        return self.api.private_chat(user)

    async def say(self, user: JSON, chat: JSON, text: str, *, reply_to: int | None = None,
                  timeout: float = 10.0) -> int:
        """Send a message and wait until the bot has handled it and delivered what it owes.
        Returns the mark from which the bot's answers can be read."""
        mark = self.api.mark()
        self.api.send_message(user, chat, text, reply_to_message_id=reply_to)
        await self.settle(timeout)
        return mark

    async def press(self, user: JSON, chat_id: int, message_id: int, data: str) -> int:
        mark = self.api.mark()
        self.api.press(user, chat_id, message_id, data)
        await self.settle()
        return mark

    async def handled(self) -> set[int]:
        """The update ids the inbox holds as handled (done, or parked after its last try)."""
        rows = await self.services.db.all("SELECT key FROM inbox WHERE state != 'pending'"
                                          " AND key LIKE 'tg:%'")
        return {int(str(r[0]).removeprefix("tg:")) for r in rows}

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every injected update is stored and handled (handlers and their replies
        included), then deliver the outbox."""
        injected = range(self.api.first_update_id, self.api._next_update_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            handled = await self.handled()
            if all(i in handled for i in injected) and self.runner.scheduler.idle:
                break
            if asyncio.get_running_loop().time() > deadline:
                missing = [i for i in injected if i not in handled]
                raise AssertionError(f"updates not handled: {missing}\n{self.api.dump_calls()}")
            await asyncio.sleep(0.005)
        messenger = self.services.sender.messenger
        while await self.services.sender.drain() + (await messenger.drain() if messenger else 0):
            pass

    def sent_since(self, mark: int, chat_id: int | None = None, method: str = "sendMessage") -> list[Call]:
        return [
            c for c in self.api.calls[mark:]
            if c.method == method and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)
        ]

    def texts_since(self, mark: int, chat_id: int | None = None) -> list[str]:
        return [str(c.params.get("text", "")) for c in self.sent_since(mark, chat_id)]

    def answers_since(self, mark: int) -> list[str]:
        return [str(c.params.get("text", "")) for c in self.api.calls[mark:]
                if c.method == "answerCallbackQuery"]

    def last_bot_message(self, chat_id: int) -> JSON:
        return self.api.last_message(chat_id)

    def button(self, message: JSON, label_part: str) -> str:
        for label, data in self.api.buttons(message):
            if label_part in label:
                return data
        raise AssertionError(f"no button with {label_part!r} in {self.api.buttons(message)}")

    async def press_button(self, user: JSON, message: JSON, label_part: str) -> int:
        data = self.button(message, label_part)
        return await self.press(user, message["chat"]["id"], message["message_id"], data)

    async def reply_to_last(self, user: JSON, chat: JSON, text: str) -> int:
        """Answer the bot's last question in a chat by replying to it (as a ForceReply does)."""
        last = self.last_bot_message(chat["id"])
        return await self.say(user, chat, text, reply_to=last["message_id"])

    def card(self, chat_id: int, case_id: int) -> JSON:
        """The latest state of the case card posted in a chat."""
        for (chat, _mid), msg in reversed(list(self.api.messages.items())):
            if chat == chat_id and str(msg.get("text", "")).startswith(f"#{case_id} · "):
                return msg
        raise AssertionError(f"no card for #{case_id} in chat {chat_id}")


async def start_app(api: FakeBotAPI, settings: Settings, clock: Clock,
                    facebook: FacebookSecrets | None = None) -> Runner:
    """The bot as ``casebot run`` starts it (bot/service.py), polling the fake Bot API, without
    the rate limiter and the repeating jobs (tests run the jobs by hand, with their own clock);
    with ``facebook``, the page's secrets ([facebook] in the settings)."""
    runner = Runner(settings, api.token, clock=clock, rate_limiter=False, jobs=False, poll_seconds=1,
                    facebook=facebook)
    await runner.start()
    return runner


async def stop_app(runner: Runner) -> None:
    await runner.stop()


def e2e_settings(api: FakeBotAPI, tmp_path: Path, **overrides: Any) -> Settings:
    data = config_dict(tmp_path / "data" / "casebot.sqlite3")
    data["telegram"] = {"base_url": api.base_url, "base_file_url": api.base_file_url}
    # Real limits make a test wait seconds per chat; the limits have tests of their own.
    # Notices go at once (the wait that joins a burst of them has tests of its own).
    data["delivery"] = {"overall_per_second": 10000, "per_chat_per_second": 10000,
                        "group_per_minute": 100000, "notice_seconds": 0}
    # The test clock stands still unless a test moves it, so a walk is many updates in one instant:
    # a flood by the guard's measure. The guard has tests of its own (tests/test_flood*.py).
    data["flood"] = {"burst": 100000}
    data.update(overrides)
    return parse_settings(data)


@asynccontextmanager
async def running_bot(tmp_path: Path, clock: Clock, api: FakeBotAPI | None = None,
                      graph: FakeGraph | None = None, **overrides: Any) -> AsyncIterator[Bot]:
    """``graph``: the Facebook page too ([facebook] pointing at the fake Graph API, the HTTP
    server on a free port, the fake's webhook sender pointing at it)."""
    own = api is None
    api = api or FakeBotAPI(first_update_id=next(_FIRST_UPDATE_IDS)).start()
    if graph is not None:
        overrides = {**graph.config(), **overrides}
    settings = e2e_settings(api, tmp_path, **overrides)
    runner = await start_app(api, settings, clock, graph.secrets() if graph is not None else None)
    if graph is not None:
        from bot.web import WebServer

        assert isinstance(runner._web, WebServer) and settings.facebook is not None
        graph.attach(runner._web.port, settings.facebook.path)
    try:
        bot = Bot(api, runner.app, settings, clock, runner)
        if await bot.services.people.is_registered(OFFICIAL) is False:
            await register_people(bot.services.people, clock())
        await bot.settle()
        yield bot
        assert not api.server_errors, api.server_errors
    finally:
        await stop_app(runner)
        if own:
            api.stop()


def unknown_answer(tg_id: int, *, alert: bool = False) -> str:
    """What the bot answers someone it does not know (as an alert under a button: plain text)."""
    code = "{}" if alert else "<code>{}</code>"
    return (f"I don't know you yet. Your Telegram id is {code.format(tg_id)}: an administrator can add "
            f"it to {code.format('admins')} in the config, or send you an invitation link.")
