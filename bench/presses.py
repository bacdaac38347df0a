"""Figure 3: button presses through the running bot against the fake Bot API, beside a bare
python-telegram-bot echo bot on the same fake server, in the same run.

Casebot runs as ``casebot run`` does (``bot.service.Runner``, without the rate limiter and the
repeating jobs, high delivery limits): long polling stores each batch of updates in the inbox (a
committed transaction) before it asks past it, the scheduler hands the stored rows to the
handlers (each chat's in order, chats side by side), and a row is marked done once the
conversation state is written. It handles, per case, four updates: **Accept** (transaction,
event, card edited through the outbox),
**Resolved…** (the question), the official's answer (the evidence question) and **Skip** (the
resolution: transaction, event, card edited). Each update counts as done when the calls that
answer it are recorded by the fake server: ``answerCallbackQuery`` and the card's
``editMessageText`` for the presses, the bot's ``sendMessage`` for the rest.

The bare bot answers each press and edits the pressed message, and replies to a text: the same
four updates, the same completion rule. It is python-telegram-bot as it comes (httpx); a second
bare bot on casebot's request class (aiohttp, bot/request.py) shows what casebot's own work
costs with the transport set apart (no target: for reading the first ratio).

The bots share one fake server, so only the bot whose turn it is polls: the bare bots' updaters
are started and stopped, casebot's Runner keeps running (workers, sender, database) and only its
polling pauses between turns (``pause``/``resume`` below).

Two modes, each bot in turn (bare, bare on aiohttp, casebot, bare … so drift falls on all):
- *sequential*: one update at a time, the next injected when the previous is done: latency
  p50/p99 (injection → last answering call recorded) and updates per second;
- *burst*: all cases' first updates injected at once, then all second updates, …: updates per
  second when updates queue up (as in a morning rush).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, ContextTypes, MessageHandler
from telegram.ext import filters as tg_filters

from bench import ministry
from bench.common import Figure, median, ms, percentile, ratio
from bench.store import Target, working_copy
from bot.app import SERVICES, Services
from bot.domain.cases import Actor, Change
from bot.domain.rules import Action
from bot.request import AiohttpRequest
from bot.service import Runner
from tests.fakebotapi import FakeBotAPI

JSON = dict[str, Any]
Predicate = Callable[[dict[str, Any], Any], bool]
TIMEOUT = 30.0
RESOLUTION = "Visited the site with both families; the boundary was re-marked and signed."


Key = tuple[Any, ...]


class TimedAPI(FakeBotAPI):
    """The fake Bot API that tells the benchmark the moment a call it waits for is recorded.

    Expectations are filed by method and by what identifies the call (the query answered, the
    message edited, the chat sent to), so that recording a call costs the same however many are
    pending: this runs in the bots' process, and what it costs is taken from both bots."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._expected: dict[Key, list[tuple[Predicate, asyncio.AbstractEventLoop,
                                             asyncio.Future[tuple[float, Any]]]]] = {}

    @staticmethod
    def key(method: str, params: dict[str, Any]) -> Key:
        if method == "answerCallbackQuery":
            return (method, str(params.get("callback_query_id")))
        if method == "editMessageText":
            return (method, params.get("chat_id"), params.get("message_id"))
        return (method, params.get("chat_id"))

    def expect(self, method: str, params: dict[str, Any],
               predicate: Predicate = lambda _p, _r: True) -> asyncio.Future[tuple[float, Any]]:
        """A future settled when a call of ``method`` with ``params``' identity (and for which
        ``predicate`` holds) is recorded."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[float, Any]] = loop.create_future()
        with self._lock:
            self._expected.setdefault(self.key(method, params), []).append((predicate, loop, future))
        return future

    def _record(self, method: str, params: dict[str, Any], result: Any, files: Any,
                error: JSON | None = None) -> None:
        super()._record(method, params, result, files, error)
        if method == "getUpdates" or error is not None:
            return
        when = time.perf_counter()
        with self._lock:
            waiting = self._expected.get(self.key(method, params))
            for item in list(waiting or ()):
                predicate, loop, future = item
                if predicate(params, result):
                    waiting.remove(item)  # type: ignore[union-attr]
                    loop.call_soon_threadsafe(_settle, future, (when, result))


def _settle(future: asyncio.Future[tuple[float, Any]], value: tuple[float, Any]) -> None:
    if not future.done():
        future.set_result(value)


def answered(query_id: str) -> dict[str, Any]:
    return {"callback_query_id": query_id}


def at(chat: int, message_id: int | None = None) -> dict[str, Any]:
    return {"chat_id": chat, "message_id": message_id}


def marked(marker: str) -> Predicate:
    return lambda p, _r: marker in str(p.get("reply_markup", ""))


@dataclass
class Flow:
    """One case (or one bare message) pressed through: a user in a chat, the card pressed."""

    user: JSON
    chat: int
    message_id: int
    case_id: int = 0
    prompt_id: int = 0    # casebot: the "what was done?" question
    evidence_id: int = 0  # casebot: the evidence question with Skip


@dataclass
class Samples:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    seq_updates: int = 0
    seq_seconds: float = 0.0
    burst_updates: int = 0
    burst_seconds: float = 0.0

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    @property
    def all_latencies(self) -> list[float]:
        return [x for xs in self.latencies.values() for x in xs]


class Driver:
    """Injects one kind of update for a flow and returns the futures that say it is done."""

    name = ""
    kinds = ("accept", "resolve", "answer", "skip")

    def __init__(self, api: TimedAPI) -> None:
        self.api = api

    def step(self, kind: str, flow: Flow) -> list[asyncio.Future[tuple[float, Any]]]:
        raise NotImplementedError

    def after(self, kind: str, flow: Flow, results: list[tuple[float, Any]]) -> None:
        """Note what the answers carry (message ids) for the next step."""

    def press(self, flow: Flow, message_id: int, data: str) -> str:
        update = self.api.press(flow.user, flow.chat, message_id, data)
        return str(update["callback_query"]["id"])


class CasebotDriver(Driver):
    name = "casebot"

    def button(self, flow: Flow, code: str) -> str:
        with self.api._lock:
            message = self.api.messages[(flow.chat, flow.message_id)]
        for _label, data in self.api.buttons(message):
            if data and data.endswith(":" + code):
                return data
        raise AssertionError(f"no {code} button on the card of #{flow.case_id}: {message}")

    def step(self, kind: str, flow: Flow) -> list[asyncio.Future[tuple[float, Any]]]:
        api = self.api
        if kind == "accept":
            qid = self.press(flow, flow.message_id, self.button(flow, "acc"))
            return [api.expect("answerCallbackQuery", answered(qid)),
                    api.expect("editMessageText", at(flow.chat, flow.message_id))]
        if kind == "resolve":
            qid = self.press(flow, flow.message_id, self.button(flow, "res"))
            return [api.expect("answerCallbackQuery", answered(qid)),
                    api.expect("sendMessage", at(flow.chat), marked("force_reply"))]
        if kind == "answer":
            api.send_message(flow.user, flow.chat, RESOLUTION, reply_to_message_id=flow.prompt_id)
            return [api.expect("sendMessage", at(flow.chat), marked("ev:skip"))]
        qid = self.press(flow, flow.evidence_id, "ev:skip")
        return [api.expect("answerCallbackQuery", answered(qid)),
                api.expect("editMessageText", at(flow.chat, flow.message_id))]

    def after(self, kind: str, flow: Flow, results: list[tuple[float, Any]]) -> None:
        if kind == "resolve":
            flow.prompt_id = int(results[1][1]["message_id"])
        elif kind == "answer":
            flow.evidence_id = int(results[0][1]["message_id"])


class BareDriver(Driver):
    name = "bare"

    def step(self, kind: str, flow: Flow) -> list[asyncio.Future[tuple[float, Any]]]:
        api = self.api
        if kind == "answer":
            api.send_message(flow.user, flow.chat, RESOLUTION)
            return [api.expect("sendMessage", at(flow.chat))]
        qid = self.press(flow, flow.message_id, f"bare:{kind}")
        return [api.expect("answerCallbackQuery", answered(qid)),
                api.expect("editMessageText", at(flow.chat, flow.message_id))]


async def _wait(futures: list[asyncio.Future[tuple[float, Any]]]) -> list[tuple[float, Any]]:
    return list(await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT))


async def sequential(driver: Driver, flows: list[Flow], samples: Samples | None) -> None:
    started = time.perf_counter()
    for flow in flows:
        for kind in driver.kinds:
            t = time.perf_counter()
            results = await _wait(driver.step(kind, flow))
            driver.after(kind, flow, results)
            if samples is not None:
                samples.add(kind, max(r[0] for r in results) - t)
    if samples is not None:
        samples.seq_updates += len(flows) * len(driver.kinds)
        samples.seq_seconds += time.perf_counter() - started


async def burst(driver: Driver, flows: list[Flow], samples: Samples) -> None:
    """Every flow's next update at once; then the next kind. (Flows here have distinct
    (user, chat) pairs: a question waits for one answer per person and chat.)"""
    started = time.perf_counter()
    for kind in driver.kinds:
        pending = [(flow, driver.step(kind, flow)) for flow in flows]
        for flow, futures in pending:
            driver.after(kind, flow, await _wait(futures))
    samples.burst_updates += len(flows) * len(driver.kinds)
    samples.burst_seconds += time.perf_counter() - started


# --- the bots --------------------------------------------------------------------------------

def bare_application(api: FakeBotAPI, *, aiohttp: bool = False) -> Application:  # type: ignore[type-arg]
    """The reference: a bare python-telegram-bot that answers presses and edits the message.
    With ``aiohttp``, on casebot's request class instead of PTB's default (httpx)."""
    counter = 0

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        nonlocal counter
        query = update.callback_query
        assert query is not None
        counter += 1
        await query.answer()
        await query.edit_message_text(f"pressed {counter}", reply_markup=_bare_keyboard())

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("noted")

    builder = (ApplicationBuilder().token(api.token).base_url(api.base_url)
               .base_file_url(api.base_file_url))
    if aiohttp:
        builder = builder.request(AiohttpRequest()).get_updates_request(AiohttpRequest(1))
    app = builder.build()
    app.add_handler(CallbackQueryHandler(on_press))
    app.add_handler(MessageHandler(tg_filters.TEXT & ~tg_filters.COMMAND, on_text))
    return app


def _bare_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Press", callback_data="bare:press")]])


async def _start_polling(app: Application) -> None:  # type: ignore[type-arg]
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1, drop_pending_updates=False)


async def _stop_polling(app: Application) -> None:  # type: ignore[type-arg]
    assert app.updater is not None
    await app.updater.stop()


async def pause(runner: Runner, api: FakeBotAPI) -> None:
    """Casebot's polling stops (the rest of the running bot goes on). Every update injected so
    far was handled, so stored: confirm them all to the fake server, as the next getUpdates
    would, so that the next bot to poll does not receive them."""
    task = runner._source
    runner._source = None
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await runner.app.bot.get_updates(offset=api._next_update_id, timeout=0)


def resume(runner: Runner) -> None:
    """Casebot's polling again, as ``Runner.start`` begins it."""
    assert runner._source is None
    runner._source = asyncio.create_task(runner._poll(), name="polling")


async def _casebot_flows(app: Application, api: TimedAPI, count: int,  # type: ignore[type-arg]
                         clock: Callable[[], datetime]) -> list[Flow]:
    """``count`` open cases, each assigned afresh through the domain to a district (one after
    another, so that every (official, chat) pair differs), its card posted by the sender."""
    services: Services = app.bot_data[SERVICES]
    db = services.db
    districts = [(r[0], r[1], r[2]) for r in await db.all(
        "SELECT id, key, config_chat_id FROM units WHERE kind = 'district' AND active = 1 ORDER BY id")]
    officials: dict[int, list[tuple[int, str]]] = {}
    for unit_id, tg_id, name in await db.all(
            "SELECT g.unit_id, g.tg_id, p.name FROM grants g JOIN people p ON p.tg_id = g.tg_id"
            " WHERE g.role = 'official' AND g.revoked_at IS NULL ORDER BY g.tg_id"):
        officials.setdefault(unit_id, []).append((tg_id, name))
    rows = await db.all(
        "SELECT c.id FROM cases c WHERE c.status IN ('new', 'assigned', 'in_progress', 'waiting_info')"
        " AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.case_id = c.id)"
        " ORDER BY c.id DESC LIMIT ?", (count,))
    if len(rows) < count:
        raise AssertionError(f"only {len(rows)} open cases to press, {count} needed")
    ids = [r[0] for r in rows]
    async with db.transaction() as conn:  # cards of earlier assignments: not in this fake's chats
        conn.add(f"DELETE FROM case_cards WHERE case_id IN ({','.join('?' * len(ids))})", ids)
    dispatcher = Actor(ministry.WORKING_GROUP[0], "Dispatcher")
    flows = []
    for i, (case_id,) in enumerate(rows):
        unit_id, key, chat = districts[i % len(districts)]
        tg_id, name = officials[unit_id][(i // len(districts)) % len(officials[unit_id])]
        api.group_chat(chat, key)  # before the card is posted to it (the sender runs meanwhile)
        await services.cases.apply(case_id, Action.ASSIGN, dispatcher, Change(unit_key=key), clock())
        flows.append(Flow(api.user(tg_id, name, username=f"user{tg_id}"), chat, 0, case_id))
    # Every card out before the presses; a card whose call failed (the fake server may drop a
    # kept-alive connection under latency: httpx.ReadError) is retried by the sender, 5 s later.
    deadline = time.monotonic() + TIMEOUT
    while await services.outbox.pending() and time.monotonic() < deadline:
        await services.sender.drain()
        await asyncio.sleep(0.1)
    for flow in flows:
        cards = [c for c in await services.outbox.cards(flow.case_id) if c.chat_id == flow.chat]
        if not cards:
            rows = await db.all("SELECT id, kind, chat_id, sent_at, failed_at, last_error, next_attempt_at"
                                " FROM outbox WHERE case_id = ? OR chat_id = ? ORDER BY id DESC LIMIT 8",
                                (flow.case_id, flow.chat))
            raise AssertionError(f"the card of #{flow.case_id} was not posted: "
                                 f"{[tuple(r) for r in rows]}")
        flow.message_id = cards[-1].message_id
    return flows


async def _bare_flows(app: Application, api: TimedAPI, flows: list[Flow]) -> list[Flow]:  # type: ignore[type-arg]
    """As many messages of the bare bot, in the same chats, pressed by the same people."""
    out = []
    for flow in flows:
        message = await app.bot.send_message(flow.chat, "A message with a button",
                                             reply_markup=_bare_keyboard())
        out.append(Flow(flow.user, flow.chat, message.message_id))
    return out


async def run(path: Target, work_dir: Path, *, cases: int = 50, rounds: int = 2,
              warmup: int = 3, latency: float = 0.0) -> list[Figure]:
    """``cases`` flows per mode and round for each bot (4 updates each)."""
    logging.getLogger("bot").setLevel(logging.ERROR)
    copy = working_copy(path, work_dir, "presses.sqlite3")
    api = TimedAPI(latency=latency).start()  # latency: seconds each Bot API call takes
    per_round = 2 * cases
    started = time.monotonic()

    def clock() -> datetime:
        return ministry.NOW + timedelta(seconds=time.monotonic() - started)

    settings = ministry.settings_for(copy, api=api, delivery=ministry.FAST_DELIVERY)
    runner = Runner(settings, api.token, clock=clock, rate_limiter=False, jobs=False, poll_seconds=1)
    bare = bare_application(api)
    bare_aiohttp = bare_application(api, aiohttp=True)  # the same transport as casebot
    samples = {"bare": Samples(), "bare_aiohttp": Samples(), "casebot": Samples()}

    async def start(name: str) -> None:
        if name == "casebot":
            resume(runner)
        else:
            await _start_polling(bare if name == "bare" else bare_aiohttp)

    async def stop(name: str) -> None:
        if name == "casebot":
            await pause(runner, api)
        else:
            await _stop_polling(bare if name == "bare" else bare_aiohttp)

    try:
        for app in (bare, bare_aiohttp):
            await app.initialize()
        await runner.start()  # as `casebot run`: getMe, the database, post_init, the inbox, polling
        await pause(runner, api)
        casebot = runner.app
        flows = await _casebot_flows(casebot, api, warmup + rounds * per_round, clock)
        bare_flows = await _bare_flows(bare, api, flows)
        aiohttp_flows = await _bare_flows(bare_aiohttp, api, flows)
        for app in (bare, bare_aiohttp):
            await app.start()
        drivers: dict[str, tuple[Driver, list[Flow]]] = {
            "bare": (BareDriver(api), bare_flows),
            "bare_aiohttp": (BareDriver(api), aiohttp_flows),
            "casebot": (CasebotDriver(api), flows),
        }
        for name, (driver, fl) in drivers.items():  # warm-up, not counted
            await start(name)
            await sequential(driver, fl[:warmup], None)
            await stop(name)
            drivers[name] = (driver, fl[warmup:])
        for r in range(rounds):
            for name, (driver, fl) in drivers.items():
                mine = fl[r * per_round:(r + 1) * per_round] if name == "casebot" else fl[:per_round]
                await start(name)
                await sequential(driver, mine[:cases], samples[name])
                await burst(driver, mine[cases:], samples[name])
                await stop(name)
        if api.server_errors:
            raise AssertionError(api.server_errors[-1])
        services: Services = casebot.bot_data[SERVICES]
        ids = [f.case_id for f in flows]
        resolved = await services.db.one(
            f"SELECT COUNT(*) FROM cases WHERE status = 'resolved' AND id IN ({','.join('?' * len(ids))})",
            ids)
        if resolved is None or resolved[0] != len(ids):
            raise AssertionError(f"{len(ids)} cases pressed through, {resolved and resolved[0]} resolved")
        handled = await services.db.one("SELECT COUNT(*), SUM(state = 'done') FROM inbox")
        assert handled is not None
        if handled[0] != handled[1] or handled[0] < len(ids) * len(CasebotDriver.kinds):
            raise AssertionError(f"inbox: {handled[1]} of {handled[0]} rows done, "
                                 f"{len(ids) * len(CasebotDriver.kinds)} updates injected")
    finally:
        for app in (bare, bare_aiohttp):
            with contextlib.suppress(Exception):
                if app.updater is not None and app.updater.running:
                    await app.updater.stop()
            with contextlib.suppress(Exception):
                if app.running:
                    await app.stop()
            with contextlib.suppress(Exception):
                await app.shutdown()
        await runner.stop()
        api.stop()
    return figures(samples["casebot"], samples["bare"], cases, rounds, samples["bare_aiohttp"])


def figures(bot: Samples, bare: Samples, cases: int, rounds: int,
            same_transport: Samples | None = None) -> list[Figure]:
    def rate(s: Samples, burst_mode: bool) -> float:
        return (s.burst_updates / s.burst_seconds) if burst_mode else (s.seq_updates / s.seq_seconds)

    b_burst, r_burst = rate(bot, True), rate(bare, True)
    b_seq, r_seq = rate(bot, False), rate(bare, False)
    lat, ref = bot.all_latencies, bare.all_latencies
    detail = ", ".join(f"{k} {ms(median(v))}" for k, v in bot.latencies.items())
    n = len(lat)
    out = [
        Figure("Button presses through the inbox, burst (Accept, Resolved…, answer, Skip): updates/s",
               f"{b_burst:.0f}/s", f"{r_burst:.0f}/s bare PTB bot", f"{b_burst / r_burst:.2f}",
               "≥ 0.5", b_burst / r_burst >= 0.5,
               data={"casebot": b_burst, "bare": r_burst, "updates": bot.burst_updates}),
        Figure("Button presses through the inbox, one at a time: updates/s", f"{b_seq:.0f}/s",
               f"{r_seq:.0f}/s bare",
               f"{b_seq / r_seq:.2f}", "≥ 0.5", b_seq / r_seq >= 0.5,
               data={"casebot": b_seq, "bare": r_seq, "updates": bot.seq_updates}),
        Figure(f"Button press latency p50 (n={n}; {detail})", ms(median(lat)), f"{ms(median(ref))} bare",
               ratio(median(lat), median(ref)), data={"casebot": median(lat), "bare": median(ref)}),
        Figure(f"Button press latency p99 (n={n})", ms(percentile(lat, 99)),
               f"{ms(percentile(ref, 99))} bare", ratio(percentile(lat, 99), percentile(ref, 99)),
               data={"casebot": percentile(lat, 99), "bare": percentile(ref, 99)}),
    ]
    if same_transport is not None:  # what casebot's own work costs, the transport set apart
        for burst_mode, mode in ((True, "burst"), (False, "one at a time")):
            mine, theirs = rate(bot, burst_mode), rate(same_transport, burst_mode)
            out.append(Figure(
                f"Button presses, {mode}, vs the bare bot on casebot's transport (aiohttp): updates/s",
                f"{mine:.0f}/s", f"{theirs:.0f}/s bare PTB bot on aiohttp", f"{mine / theirs:.2f}",
                data={"casebot": mine, "bare_aiohttp": theirs}))
    return out
