"""The composition root: builds the Application and its services (kept in ``bot_data``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)
from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults

from bot.config import Settings
from bot.db import Database
from bot.domain.cases import CaseService
from bot.domain.citizens import CitizenStore
from bot.domain.conversation import Conversation
from bot.domain.digest import DigestService
from bot.domain.outbox import OutboxStore
from bot.domain.people import PeopleService
from bot.domain.requests import RequestService
from bot.domain.rules import Role
from bot.domain.units import UnitService
from bot.i18n import _, use_locale
from bot.jobs.outbox import OutboxSender
from bot.persistence import DatabasePersistence
from bot.request import AiohttpRequest

log = logging.getLogger(__name__)
SERVICES = "services"
LEASED = "leased"        # bot_data: the runner starts the sender and the jobs under a lease
SCHEDULED = "scheduled"  # bot_data: the repeating jobs started by ``start_jobs``
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    db: Database
    units: UnitService
    people: PeopleService
    cases: CaseService
    outbox: OutboxStore
    sender: OutboxSender
    clock: Clock
    digests: DigestService
    citizens: CitizenStore
    requests: RequestService
    conversation: Conversation


def bot_api_request(settings: Settings, connections: int = 256) -> AiohttpRequest:
    """A connection pool to the Bot API (bot/request.py: less CPU per call than PTB's httpx),
    through the configured proxy if any."""
    return AiohttpRequest(connections, proxy=settings.telegram.proxy)


def build_application(
    settings: Settings, token: str, *, clock: Clock = utcnow, rate_limiter: bool = True,
    jobs: bool = True,
) -> Application:
    """The Application, without python-telegram-bot's updater: updates reach it through the
    inbox (bot/service.py), which calls ``process_update``."""
    if settings.telegram.proxy is not None:
        log.info("Bot API requests go through the proxy %s", settings.telegram.proxy)  # no credentials
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram.base_url)
        .base_file_url(settings.telegram.base_file_url)
        .defaults(Defaults(tzinfo=settings.tz, parse_mode=ParseMode.HTML))
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
        .updater(None)
        .request(bot_api_request(settings))
        .get_updates_request(bot_api_request(settings, 1))
    )
    # Conversations and each person's drafts live in the database (bot/persistence.py); the
    # runner attaches the database before initialize() reads them.
    builder = builder.persistence(DatabasePersistence())
    if rate_limiter:
        # Telegram allows a group 20 messages in any minute: at most one every 3 s keeps within
        # it (a burst of 20 and then one every 3 s would not). A 429 is not retried here (PTB's
        # retry pauses every chat's requests): the inbox waits it out for that chat alone, and
        # the outbox sender schedules the row again.
        limits = settings.delivery
        builder = builder.rate_limiter(AIORateLimiter(  # type: ignore[arg-type]
            overall_max_rate=limits.overall_per_second, overall_time_period=1,
            group_max_rate=1, group_time_period=60 / limits.group_per_minute, max_retries=0))
    app = builder.build()
    app.bot_data["settings"] = settings
    app.bot_data["clock"] = clock
    app.bot_data["jobs"] = jobs  # tests run the repeating job by hand, with their own clock

    from bot.handlers import register  # handlers import the app's types; avoid a cycle

    register(app)
    return app


async def open_services(settings: Settings, app: Application, clock: Clock, db: Database) -> Services:
    units = UnitService(db, settings)
    await units.sync_from_config()
    people = PeopleService(db, settings, units)
    await people.sync_config(clock())
    store = OutboxStore(db)
    cases = CaseService(db, settings, units, people, clock)
    await cases.enter_ladder(clock())  # cases imported by an earlier version, never reminded
    sender = OutboxSender(app.bot, store, cases, clock, settings.outbox_interval_seconds)
    cases.on_commit = sender.wake
    digests = DigestService(db, settings, units, people, on_commit=sender.wake)
    requests = RequestService(db, cases.tell_requests_waiting)
    citizens = CitizenStore(db)
    conversation = Conversation(db, cases, citizens, requests, settings)
    return Services(settings, db, units, people, cases, store, sender, clock, digests,
                    citizens, requests, conversation)


async def _post_init(app: Application) -> None:
    settings: Settings = app.bot_data["settings"]
    services = await open_services(settings, app, app.bot_data["clock"], app.bot_data["db"])
    app.bot_data[SERVICES] = services
    await _set_commands(app, settings)
    if not app.bot_data.get(LEASED):
        start_jobs(app)


def start_jobs(app: Application) -> None:
    """The outbox sender and the repeating jobs. With two instances on one database they run in
    the one holding the "jobs" lease (bot/service.py), started when it takes the lease: the run
    at start then catches up what a dead holder left."""
    services: Services = app.bot_data[SERVICES]
    settings = services.settings
    services.sender.start()
    from bot.jobs.reminders import tick

    assert app.job_queue is not None
    if app.bot_data.get("jobs", True):
        # The first run comes right after start: it sends today's digest if it was missed while
        # the bot was down, without holding up start-up.
        # Not first=0 on the repeating job: its start is already past when the job queue starts
        # (after post_init), and APScheduler would put the first run a whole interval later.
        interval = settings.reminders.interval_minutes * 60
        jobs = [app.job_queue.run_once(tick, when=0, name="reminders-and-digests-at-start",
                                       job_kwargs={"misfire_grace_time": None}),
                app.job_queue.run_repeating(tick, interval=interval, first=interval,
                                            name="reminders-and-digests")]
        from bot.jobs.backup import schedule

        jobs += schedule(app.job_queue, settings)  # the daily backup, if [backup] is configured
        app.bot_data[SCHEDULED] = jobs


async def stop_jobs(app: Application) -> None:
    """The lease was lost (or given up): no repeating job is started here any more, and the
    sender stops (its rows in hand go back to pending, for the instance that takes over)."""
    for job in app.bot_data.pop(SCHEDULED, []):
        with contextlib.suppress(JobLookupError):  # a job run once that has run is gone already
            job.schedule_removal()
    services: Services | None = app.bot_data.get(SERVICES)
    if services is not None:
        await services.sender.stop()


async def _post_stop(app: Application) -> None:
    services: Services | None = app.bot_data.get(SERVICES)
    if services is not None:
        await services.sender.stop()


async def _post_shutdown(app: Application) -> None:
    services: Services | None = app.bot_data.pop(SERVICES, None)
    if services is not None:
        await services.sender.stop()  # the database is the runner's: it closes it


def command_list(private: bool, admin: bool = False) -> list[tuple[str, str]]:
    """The command menu: shorter in groups; fuller for admins."""
    common = [
        ("mycases", _("Open cases of my unit")),
        ("case", _("Show a case and its history")),
        ("search", _("Find a case")),
        ("overdue", _("Overdue cases")),
        ("digest", _("A digest of my units")),
        ("lang", _("Language: Khmer or English")),
        ("help", _("What I can do")),
    ]
    if not private:
        return [*common, ("units", _("The unit tree and chats"))]
    out = [("new", _("Create a case")), *common, ("stats", _("Public figures")),
           ("cancel", _("Stop what you are doing"))]
    if admin:
        out += [("inbox", _("Requests from citizens")),
                ("report", _("The period report")), ("export", _("Cases and events as a file")),
                ("invite", _("An invitation link")), ("people", _("Who holds which role")),
                ("revoke", _("Take rights away")), ("refusals", _("Refused attempts")),
                ("accesslog", _("Who saw a case's personal data")),
                ("erase", _("Erase a citizen's personal data"))]
    return out


async def _set_commands(app: Application, settings: Settings) -> None:
    """Menus in Khmer (language_code "km") and English (the default), for private chats and
    groups, and a fuller one in each admin's private chat."""
    services: Services = app.bot_data[SERVICES]
    admins = await services.people.holders(Role.ADMIN)
    for lang, code in (("en", None), ("km", "km")):
        with use_locale(lang):
            menus: list[tuple[Any, list[tuple[str, str]]]] = [
                (BotCommandScopeAllPrivateChats(), command_list(True)),
                (BotCommandScopeAllGroupChats(), command_list(False)),
            ]
            menus += [(BotCommandScopeChat(a), command_list(True, admin=True)) for a in admins]
        for scope, commands in menus:
            try:
                await app.bot.set_my_commands([BotCommand(c, d) for c, d in commands], scope=scope,
                                              language_code=code)
            except Exception as exc:  # a cosmetic call; never block start-up on it
                log.warning("setMyCommands failed: %s", type(exc).__name__)
