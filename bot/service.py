"""Running the bot as a service: reach the Bot API, take updates into the inbox, handle them, stop.

Every update travels one path (../shared/design/durable-path.md): its source — long polling or
the webhook (bot/web.py) — stores it in the inbox in a committed transaction, and only then
confirms it (the next getUpdates offset, the webhook's 200). The scheduler hands stored updates
to python-telegram-bot's handlers, each chat's in order and chats side by side; a change an update
asks for is recorded with the change (bot/domain/origin.py), so an update handled again changes
nothing twice. On SIGTERM the source stops, the updates in hand finish, and the rest stays in the
inbox and the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from datetime import timedelta
from urllib.parse import urlsplit

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.app import SERVICES, Clock, Services, bot_api_request, build_application, utcnow
from bot.attempts import Attempt, current_attempt, describe
from bot.config import Settings
from bot.db import Database
from bot.domain import origin
from bot.inbox import MAX_ATTEMPTS, Inbox, Item
from bot.persistence import DatabasePersistence
from bot.scheduler import WORKERS, Scheduler

log = logging.getLogger("bot.service")

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
POLL_SECONDS = 25     # long polling: Telegram holds a getUpdates this long when there is nothing
STOP_SECONDS = 4      # on SIGTERM, how long the updates in hand may take (all of stop: under 10 s)
MAX_WAITS = 5         # an update's reply refused for Telegram's limit (429): waited out this often
FRESH = 1000          # updates handed from their source to their worker in memory (see store)

EXIT_OK = 0
EXIT_CONFIG = 2       # a bad config (one line says which key)
EXIT_TOKEN = 3        # the Bot API refused the token (401/404): not retried
EXIT_UNREACHABLE = 4  # the Bot API could not be reached in telegram.start_attempts tries


class TokenRefused(Exception):
    pass


class Unreachable(Exception):
    pass


def retry_seconds(error: BaseException) -> float:
    delay = error.retry_after if isinstance(error, RetryAfter) else 1
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


def chat_key(update: Update) -> str:
    if update.effective_chat is not None:
        return f"chat:{update.effective_chat.id}"
    if update.effective_user is not None:
        return f"user:{update.effective_user.id}"
    return "other"


def where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Runner:
    def __init__(
        self, settings: Settings, token: str, *, clock: Clock = utcnow, rate_limiter: bool = True,
        jobs: bool = True, webhook: bool = False, poll_seconds: int = POLL_SECONDS,
        workers: int = WORKERS,
    ) -> None:
        self.settings = settings
        self.token = token
        self.clock = clock
        self.webhook = webhook
        self.poll_seconds = poll_seconds
        self.app = build_application(settings, token, clock=clock, rate_limiter=rate_limiter, jobs=jobs)
        assert isinstance(self.app.persistence, DatabasePersistence)
        self.persistence = self.app.persistence
        self.scheduler = Scheduler(self._handle, workers)
        self.inbox: Inbox | None = None
        self._fresh: dict[int, tuple[str, Update, int]] = {}  # row id: key, update, attempts
        self.stopped = asyncio.Event()  # set by a signal, or by a source that cannot go on
        self.exit_code = EXIT_OK
        self._source: asyncio.Task[None] | None = None
        self._web: object | None = None
        self._started = False

    @property
    def services(self) -> Services:
        services: Services = self.app.bot_data[SERVICES]
        return services

    # --- start ------------------------------------------------------------------------------

    async def reach_bot_api(self) -> None:
        """``getMe`` until it answers: one line a failed try, waits doubling up to
        ``telegram.retry_max_seconds``; a refused token is final."""
        tg = self.settings.telegram
        request = bot_api_request(self.settings, connections=1)
        await request.initialize()
        try:
            probe = Bot(self.token, base_url=tg.base_url, base_file_url=tg.base_file_url,
                        request=request, get_updates_request=request)
            delay, attempt = min(1.0, tg.retry_max_seconds), 0
            while True:
                attempt += 1
                try:
                    await probe.get_me()
                    return
                except InvalidToken as exc:
                    raise TokenRefused() from exc
                except (NetworkError, RetryAfter) as exc:
                    if tg.start_attempts and attempt >= tg.start_attempts:
                        raise Unreachable() from exc
                    log.warning("cannot reach the Bot API at %s (%s); trying again in %g s",
                                where(tg.base_url), type(exc).__name__, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, tg.retry_max_seconds)
        finally:
            await request.shutdown()

    async def start(self) -> None:
        await self.reach_bot_api()
        db = await Database.open(self.settings.database)
        self.persistence.attach(db)
        self.app.bot_data["db"] = db
        await self.app.initialize()
        if self.app.post_init:
            await self.app.post_init(self.app)
        self.inbox = Inbox(db)
        await self.inbox.prune(self.clock() - timedelta(days=2))
        self.scheduler.push(await self.inbox.pending())
        self.scheduler.start()
        await self.app.start()
        self._started = True
        if self.webhook:
            from bot.web import WebServer

            web = WebServer(self)
            await web.start()
            self._web = web
        else:
            await self.app.bot.delete_webhook(drop_pending_updates=False)
            self._source = asyncio.create_task(self._poll(), name="polling")
        log.info("casebot started: %d units, database %s, updates by %s", len(self.settings.units),
                 self.settings.database, "webhook" if self.webhook else "long polling")

    # --- sources ----------------------------------------------------------------------------

    async def store(self, updates: list[Update]) -> None:
        """Into the inbox, committed; the caller confirms to the source only after this.

        The worker gets the update as stored: the object whose JSON was just committed, kept
        in memory (``FRESH`` at most, the rest read back from the inbox), which saves reading
        the row back and parsing it again (about a tenth of an update's time)."""
        assert self.inbox is not None
        items = [Item(f"tg:{u.update_id}", chat_key(u), u.to_json()) for u in updates]
        rows = await self.inbox.add(items, self.clock())
        given = {item.key: update for item, update in zip(items, updates, strict=True)}
        for row in rows:
            if len(self._fresh) < FRESH and not self.scheduler.knows(row.id) and row.key in given:
                self._fresh[row.id] = (row.key, given[row.key], row.attempts)
        self.scheduler.push([(row.id, row.chat_key) for row in rows])

    async def _poll(self) -> None:
        """Long polling with Telegram's offset: a batch is asked past (confirmed) only once it
        is stored, so a crash at any point loses nothing."""
        offset: int | None = None
        delay = 1.0
        while True:
            try:
                updates = await self.app.bot.get_updates(
                    offset=offset, timeout=self.poll_seconds, allowed_updates=ALLOWED_UPDATES)
                if updates:
                    await self.store(list(updates))
                    offset = updates[-1].update_id + 1
                delay = 1.0
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                log.error("the Bot API refused the token (revoked?): stopping")
                self.exit_code = EXIT_TOKEN
                self.stopped.set()
                return
            except (NetworkError, RetryAfter, Conflict, TelegramError, OSError) as exc:
                log.warning("getUpdates failed at %s (%s); trying again in %g s",
                            where(self.settings.telegram.base_url), type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.telegram.retry_max_seconds)
            except Exception as exc:  # e.g. the database: keep the service up, say where
                log.error("storing updates failed (%s); trying again in %g s", describe(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.telegram.retry_max_seconds)

    # --- handling ---------------------------------------------------------------------------

    async def _handle(self, row_id: int) -> None:
        assert self.inbox is not None
        fresh = self._fresh.pop(row_id, None)
        if fresh is not None:
            key, update, attempts = fresh
        else:
            stored = await self.inbox.take(row_id)
            if stored is None:
                return
            key, attempts = stored.key, stored.attempts
            update = Update.de_json(json.loads(stored.payload), self.app.bot)
        waits = 0
        while True:
            attempt = Attempt(final=attempts + 1 >= MAX_ATTEMPTS, may_wait=waits < MAX_WAITS)
            token = current_attempt.set(attempt)
            try:
                with origin.handling(key):
                    await self.app.process_update(update)
            finally:
                current_attempt.reset(token)
            # What the update changed in conversations and drafts, committed with its mark.
            with self.persistence.collecting() as writes:
                await self.app.update_persistence()
            waiting = isinstance(attempt.error, RetryAfter) and waits < MAX_WAITS
            try:
                if attempt.error is None:
                    await self.inbox.done(row_id, self.clock(), writes.statements)
                    return
                if waiting:  # Telegram's limit for this chat: wait, and it does not count as a try
                    await self.inbox.keep(writes.statements)
                    waits += 1
                    await asyncio.sleep(min(retry_seconds(attempt.error), 60.0))
                    continue
                attempts += 1
                parked = await self.inbox.failed(row_id, describe(attempt.error), self.clock(),
                                                 writes.statements)
            except BaseException:  # not committed: neither the writes nor the mark
                self.persistence.uncommitted(writes)
                raise
            if parked:
                log.error("update %s parked after %d attempts (%s): `casebot inbox` lists it",
                          key, attempts, describe(attempt.error))
                return
            await asyncio.sleep(min(0.5 * 2 ** attempts, 5.0))

    async def health(self) -> dict[str, object]:
        """For ``/healthz``: the database answers, the inbox's backlog, the sender runs."""
        report: dict[str, object] = {"database": "ok", "inbox_backlog": None,
                                     "sender": "running" if self.services.sender.alive else "stopped"}
        try:
            assert self.inbox is not None
            report["inbox_backlog"] = await self.inbox.backlog()
        except Exception as exc:
            report["database"] = describe(exc)
        report["ok"] = report["database"] == "ok" and report["sender"] == "running"
        return report

    # --- stop -------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop taking updates, finish those in hand (up to STOP_SECONDS), stop the sender and
        the jobs, close the database. What was not handled stays in the inbox and the outbox."""
        if self._source is not None:
            self._source.cancel()
            await asyncio.gather(self._source, return_exceptions=True)
            self._source = None
        if self._web is not None:
            from bot.web import WebServer

            assert isinstance(self._web, WebServer)
            await self._web.stop()
            self._web = None
        await self.scheduler.stop(STOP_SECONDS)
        self._fresh.clear()  # still in the inbox: read back at the next start
        if self._started:
            self._started = False
            await self.app.stop()
            if self.app.post_stop:
                await self.app.post_stop(self.app)
        if self.app._initialized:  # start may have failed half-way
            await self.app.shutdown()
        if self.app.post_shutdown:
            await self.app.post_shutdown(self.app)
        db: Database | None = self.app.bot_data.pop("db", None)
        if db is not None:
            await db.close()


def run(settings: Settings, token: str, *, webhook: bool = False) -> int:
    """``casebot run``: until SIGTERM or SIGINT. The exit codes are EXIT_* above."""

    async def main() -> int:
        runner = Runner(settings, token, webhook=webhook)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stopped.set)
        try:
            start = asyncio.create_task(runner.start())
            stopped = asyncio.create_task(runner.stopped.wait())
            await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not start.done():  # stopped while still trying to reach the Bot API
                start.cancel()
                await asyncio.gather(start, return_exceptions=True)
                return EXIT_OK
            start.result()
            await stopped
            log.info("stopping")
            return runner.exit_code
        except TokenRefused:
            log.error("the Bot API at %s refused the token (401 Unauthorized): check BOT_TOKEN",
                      where(settings.telegram.base_url))
            return EXIT_TOKEN
        except Unreachable:
            log.error("the Bot API at %s could not be reached in %d tries: giving up",
                      where(settings.telegram.base_url), settings.telegram.start_attempts)
            return EXIT_UNREACHABLE
        finally:
            await runner.stop()

    return asyncio.run(main())
