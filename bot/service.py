"""Running the bot as a service: reach the Bot API, take updates into the inbox, handle them, stop.

Every update travels one path (../shared/design/durable-path.md): its source — long polling or
the webhook (bot/web.py) — stores it in the inbox in a committed transaction, and only then
confirms it (the next getUpdates offset, the webhook's 200). The scheduler hands stored updates
to python-telegram-bot's handlers, each chat's in order and chats side by side; a change an update
asks for is recorded with the change (bot/domain/origin.py), so an update handled again changes
nothing twice. On SIGTERM the source stops, the updates in hand finish, and the rest stays in the
inbox and the outbox for the next start.

Two instances may share the database (README, "Two instances"; bot/lease.py): each handles the
inbox rows it claimed (a chat in one instance's hands at a time), and looks every
``claim_seconds`` for rows nobody holds (another instance's, once its claims expire); the outbox
sender and the repeating jobs run in the instance holding the "jobs" lease, and long polling in
the one holding the "poller" lease. A lone instance holds them all from its start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.app import (
    LEASED,
    SERVICES,
    Clock,
    Services,
    bot_api_request,
    build_application,
    start_jobs,
    stop_jobs,
    utcnow,
)
from bot.attempts import Attempt, current_attempt, describe
from bot.config import FacebookSecrets, Settings, facebook_secrets
from bot.db import Database
from bot.domain import origin
from bot.inbox import MAX_ATTEMPTS, Claim, Inbox, Item, Pending
from bot.lease import JOBS, POLLER, Fence, Instance, Keeper, Leases, wall
from bot.persistence import DatabasePersistence
from bot.scheduler import WORKERS, Scheduler

if TYPE_CHECKING:
    from bot.messenger.sender import MessengerSender

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
        workers: int = WORKERS, facebook: FacebookSecrets | None = None,
    ) -> None:
        self.settings = settings
        self.token = token
        self.clock = clock
        self.webhook = webhook
        self.poll_seconds = poll_seconds
        self.app = build_application(settings, token, clock=clock, rate_limiter=rate_limiter, jobs=jobs)
        assert isinstance(self.app.persistence, DatabasePersistence)
        self.persistence = self.app.persistence
        self.scheduler = Scheduler(self._handle, workers, drained=self._drained)
        self.inbox: Inbox | None = None
        # Two instances: this one's id, its leases, and the rows it claims (wall clock).
        self.instance = Instance.new(settings.instances.name)
        self.wall: Clock = wall
        self.keeper: Keeper | None = None
        self.claim_seconds = min(1.0, settings.instances.lease_seconds / 10)
        self._claiming = asyncio.Lock()  # a claim and its push to the scheduler, in turn
        self._claimer: asyncio.Task[None] | None = None
        self._chasing: set[asyncio.Task[list[Pending]]] = set()  # see ``_drained``
        self.app.bot_data[LEASED] = True
        self._fresh: dict[int, tuple[str, Update, int]] = {}  # row id: key, update, attempts
        self.stopped = asyncio.Event()  # set by a signal, or by a source that cannot go on
        self.exit_code = EXIT_OK
        self._source: asyncio.Task[None] | None = None
        self._web: object | None = None
        self._started = False
        # The Facebook page ([facebook]): its secrets from the environment only.
        self.facebook_secrets = facebook if facebook is not None or settings.facebook is None \
            else facebook_secrets()
        self.messenger: object | None = None  # bot.messenger.inbound.MessengerInbound, once started

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
        await self.claim_free()  # what the last run (or a dead instance) left
        self.scheduler.start()
        await self.app.start()
        self._started = True
        if self.settings.facebook is not None:
            self._start_messenger()
        keeper = self.keeper = Keeper(Leases(db, self.instance, self.settings.instances.lease_seconds,
                                             self.wall), every_turn=self._renew_claims)
        keeper.want(JOBS, self._jobs_gained, self._jobs_lost)
        if not self.webhook:
            keeper.want(POLLER, self._poller_gained, self._poller_lost)
        await keeper.start()
        self._claimer = asyncio.create_task(self._claim_loop(), name="inbox-claims")
        if self.webhook or self.settings.facebook is not None:
            from bot.web import WebServer

            web = WebServer(self, telegram=self.webhook)
            await web.start()
            self._web = web
        if not self.webhook and not keeper.holds(POLLER):
            log.info("another instance polls Telegram: this one stands by (lease %s)", POLLER)
        log.info("casebot started: %d units, database %s, updates by %s%s", len(self.settings.units),
                 self.settings.database, "webhook" if self.webhook else "long polling",
                 ", the Facebook page's by its webhook" if self.settings.facebook else "")

    def _start_messenger(self) -> None:
        """The page's processor, and its sender beside the outbox's (bot/messenger/): the sender
        runs where the outbox's does, in the instance holding the jobs lease (``_jobs_gained``)."""
        from bot.messenger.graph import Graph
        from bot.messenger.inbound import MessengerInbound
        from bot.messenger.sender import MessengerSender

        fb, secrets = self.settings.facebook, self.facebook_secrets
        assert fb is not None and secrets is not None
        services = self.services
        services.sender.messenger = MessengerSender(
            Graph(fb, secrets.page_token), services.outbox, services.cases, services.citizens,
            self.clock, fb.per_second, self.settings.delivery.per_chat_per_second,
            on_queued=services.sender.wake, interval=self.settings.outbox_interval_seconds)
        self.messenger = MessengerInbound(services)

    # --- sources ----------------------------------------------------------------------------

    async def store(self, updates: list[Update]) -> None:
        """Into the inbox, committed; the caller confirms to the source only after this.

        The worker gets the update as stored: the object whose JSON was just committed, kept
        in memory (``FRESH`` at most, the rest read back from the inbox), which saves reading
        the row back and parsing it again (about a tenth of an update's time)."""
        assert self.inbox is not None
        items = [Item(f"tg:{u.update_id}", chat_key(u), u.to_json()) for u in updates]
        async with self._claiming:
            # Claimed with storing, where the chat is not in another instance's hands (that one
            # takes the row when it is done with the chat's earlier ones: ``_drained``).
            rows = await self.inbox.add(items, self.clock(), self._claim())
            given = {item.key: update for item, update in zip(items, updates, strict=True)}
            for row in rows:
                if len(self._fresh) < FRESH and not self.scheduler.knows(row.id) and row.key in given:
                    self._fresh[row.id] = (row.key, given[row.key], row.attempts)
            self.scheduler.push([(row.id, row.chat_key) for row in rows])

    # --- two instances ----------------------------------------------------------------------

    def _claim(self) -> Claim:
        return Claim.at(self.instance.id, self.wall(), self.settings.instances.lease_seconds)

    async def claim_free(self, chat: str | None = None) -> list[Pending]:
        """Claim the rows nobody holds (all, or ``chat``'s) and hand them to the scheduler."""
        assert self.inbox is not None
        async with self._claiming:
            rows = await self.inbox.claim_free(self._claim(), chat_key=chat)
            self.scheduler.push([(row.id, row.chat_key) for row in rows])
        return rows

    async def _claim_loop(self) -> None:
        while True:
            await asyncio.sleep(self.claim_seconds)
            try:
                await self.claim_free()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database busy or away: the next round tries again
                log.warning("claiming inbox rows failed (%s)", describe(exc))

    def _drained(self, chat: str) -> None:
        """A chat's last row in memory is done: with another instance alive, it may have stored
        the chat's next row (it could not claim it while this one held the chat): take it now
        rather than at the next round."""
        if self.keeper is not None and self.keeper.others:
            task = asyncio.get_running_loop().create_task(self.claim_free(chat))
            self._chasing.add(task)
            task.add_done_callback(self._chased)

    def _chased(self, task: asyncio.Task[list[Pending]]) -> None:
        self._chasing.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("claiming a chat's next inbox row failed (%s)", describe(exc))

    async def _renew_claims(self) -> None:
        assert self.inbox is not None
        await self.inbox.renew_claims(self._claim())
        if self.keeper is not None and not self.keeper.holds(JOBS) and self.keeper.held_elsewhere(JOBS):
            # `casebot health` reads the sender's heartbeat: the sender runs, in the other instance.
            self.services.sender.heartbeat.beat()

    async def _jobs_gained(self) -> None:
        sender = self.services.sender
        sender.fence = Fence(JOBS, self.instance.id, self.wall)
        if self.keeper is not None:
            sender.fenced = self.keeper.poke
        start_jobs(self.app)
        if (messenger := self._messenger_sender()) is not None:
            messenger.start()

    async def _jobs_lost(self) -> None:
        await stop_jobs(self.app)
        if (messenger := self._messenger_sender()) is not None:
            await messenger.stop()

    def _messenger_sender(self) -> MessengerSender | None:
        from bot.messenger.sender import MessengerSender

        messenger = self.services.sender.messenger
        assert messenger is None or isinstance(messenger, MessengerSender)
        return messenger

    async def _poller_gained(self) -> None:
        await self.app.bot.delete_webhook(drop_pending_updates=False)
        self._source = asyncio.create_task(self._poll(), name="polling")

    async def _poller_lost(self) -> None:
        if self._source is not None:
            self._source.cancel()
            await asyncio.gather(self._source, return_exceptions=True)
            self._source = None

    async def store_items(self, items: list[Item]) -> None:
        """Other sources' events (the Facebook page's webhook) into the inbox, committed; the
        caller confirms to the source only after this."""
        assert self.inbox is not None
        async with self._claiming:  # claimed with storing, as Telegram's updates (``store``)
            rows = await self.inbox.add(items, self.clock(), self._claim())
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
            stored = await self.inbox.take(row_id, self.instance.id)
            if stored is None:
                return
            if stored.key.startswith("fb:"):
                await self._handle_page_event(row_id, stored.key, stored.payload, stored.attempts)
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

    async def _handle_page_event(self, row_id: int, key: str, payload: str, attempts: int) -> None:
        """A Facebook page's event: to the Messenger processor (not to python-telegram-bot),
        under its key so that its changes happen once; done, or tried again, or parked, as an
        update is."""
        assert self.inbox is not None
        from bot.messenger.events import Inbound
        from bot.messenger.inbound import MessengerInbound

        while True:
            error: BaseException | None = None
            try:
                if not isinstance(self.messenger, MessengerInbound):
                    raise RuntimeError("no [facebook] table: the page's events wait")
                with origin.handling(key):
                    await self.messenger.handle(Inbound.from_json(payload), self.clock())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
            if error is None:
                await self.inbox.done(row_id, self.clock())
                return
            attempts += 1
            if await self.inbox.failed(row_id, describe(error), self.clock()):
                log.error("page event %s parked after %d attempts (%s): `casebot inbox` lists it",
                          key, attempts, describe(error))
                return
            await asyncio.sleep(min(0.5 * 2 ** attempts, 5.0))

    async def health(self) -> dict[str, object]:
        """For ``/healthz``: the database answers, the inbox's backlog, the sender runs."""
        sender = "running" if self.services.sender.alive else "stopped"
        if sender == "stopped" and self.keeper is not None and not self.keeper.holds(JOBS):
            sender = "standby"  # another instance holds the jobs' lease (or will, in time)
        report: dict[str, object] = {"database": "ok", "inbox_backlog": None, "sender": sender}
        try:
            assert self.inbox is not None
            report["inbox_backlog"] = await self.inbox.backlog()
        except Exception as exc:
            report["database"] = describe(exc)
        report["ok"] = report["database"] == "ok" and report["sender"] in ("running", "standby")
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
        if self._claimer is not None:
            self._claimer.cancel()
            await asyncio.gather(self._claimer, return_exceptions=True)
            self._claimer = None
        await self.scheduler.stop(STOP_SECONDS)
        self._fresh.clear()  # still in the inbox: read back at the next start
        for task in list(self._chasing):
            task.cancel()
        await asyncio.gather(*self._chasing, return_exceptions=True)
        if self.keeper is not None:  # the sender and the jobs stop; the leases are released
            keeper, self.keeper = self.keeper, None
            try:
                await keeper.stop()
            except Exception as exc:
                log.warning("releasing the leases failed (%s): the other instance waits for them "
                            "to expire", describe(exc))
            try:  # the rows not handled: for the other instance at once, or for the next start
                assert self.inbox is not None
                await self.inbox.release_claims(self.instance.id)
            except Exception as exc:
                log.warning("releasing the inbox's claims failed (%s)", describe(exc))
        if self._started:
            self._started = False
            await self.app.stop()
            if self.app.post_stop:
                await self.app.post_stop(self.app)  # the outbox's sender, then the Messenger one
            messenger = self.services.sender.messenger
            if messenger is not None:
                from bot.messenger.sender import MessengerSender

                assert isinstance(messenger, MessengerSender)
                await messenger.stop()
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
