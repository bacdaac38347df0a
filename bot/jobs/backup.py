"""The daily backup (config ``[backup]``): at ``time`` (local) into ``folder``, named with the UTC
time; the older ones beyond ``keep`` are deleted only once the new one has passed its checks. A
failed backup is told to every admin, and the older backups stay.

Whether one is due is read from the folder itself: the newest backup there is older than the
last scheduled time. So a backup missed while the bot was down (or one that failed) is made when
the bot starts.
"""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import datetime, timedelta
from pathlib import Path

from telegram.ext import ContextTypes, Job, JobQueue

from bot import pgbackup
from bot.app import SERVICES, Services
from bot.backup import BackupFailed, BackupRefused, backup, backup_name, prune, scheduled, taken_at
from bot.config import BackupSettings, Settings
from bot.domain.rules import Role
from bot.i18n import _, use_locale

log = logging.getLogger(__name__)
LOCK = "backup-lock"
START_DELAY = 60  # seconds after start: a missed backup, once start-up is over


def schedule(job_queue: JobQueue, settings: Settings) -> list[Job]:
    """Every day at the configured local time, and once soon after start. The jobs."""
    if settings.backup is None:
        return []
    always = {"misfire_grace_time": None}  # late (a busy loop, a suspended host) is better than never
    return [job_queue.run_once(tick, when=START_DELAY, name="backup-at-start", job_kwargs=always),
            job_queue.run_daily(tick, time=settings.backup.time.replace(tzinfo=settings.tz),
                                name="backup", job_kwargs=always)]


async def tick(context: ContextTypes.DEFAULT_TYPE) -> None:
    services: Services = context.application.bot_data[SERVICES]
    lock = context.application.bot_data.setdefault(LOCK, asyncio.Lock())
    async with lock:  # the run at start and the daily one never overlap
        await run_due(services)


def last_due(config: BackupSettings, settings: Settings, now: datetime) -> datetime:
    """The latest scheduled time not after ``now``: today's, or yesterday's before it comes."""
    local = now.astimezone(settings.tz)
    at = datetime.combine(local.date(), config.time, tzinfo=settings.tz)
    return at if at <= local else datetime.combine(local.date() - timedelta(days=1), config.time,
                                                   tzinfo=settings.tz)


def is_due(config: BackupSettings, settings: Settings, now: datetime) -> bool:
    """No backup in the folder since the last scheduled time (one named after ``now``, from a clock
    once set wrong, does not count)."""
    since = last_due(config, settings, now)
    return not any(since <= taken <= now for p in scheduled(config.folder)
                   if (taken := taken_at(p)) is not None)


async def run_due(services: Services) -> Path | None:
    """Take the backup if one is due: the file written, or None (not due, or failed: the admins
    are told)."""
    config = services.settings.backup
    if config is None or not is_due(config, services.settings, now := services.clock()):
        return None
    url = services.settings.database_url
    dest = config.folder / (backup_name(now) if url is None else pgbackup.backup_name(now))
    database = services.settings.database_path
    try:
        config.folder.mkdir(parents=True, exist_ok=True)
        if url is None:
            await asyncio.to_thread(backup, database, dest, now)
        else:  # PostgreSQL: pg_dump
            await asyncio.to_thread(pgbackup.backup, url, dest)
    except (BackupRefused, BackupFailed, OSError, RuntimeError, pgbackup.ToolMissing) as exc:
        problems = exc.problems if isinstance(exc, BackupFailed) else [
            f"{config.folder}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)]
        log.error("backup %s failed: %s", dest, "; ".join(problems))
        await tell_admins(services, config.folder, problems, now)
        return None
    try:
        gone = len(prune(config.folder, config.keep, dest))
    except OSError as exc:  # the new backup is there and sound; the old ones stay a day longer
        log.warning("older backups in %s not deleted: %s", config.folder, exc.strerror or exc)
        gone = 0
    log.info("backup written and checked: %s (%d older deleted)", dest, gone)
    return dest


async def tell_admins(services: Services, folder: Path, problems: list[str], now: datetime) -> None:
    detail = html.escape("; ".join(problems[:3]) + (" …" if len(problems) > 3 else ""))
    for admin in await services.people.holders(Role.ADMIN):
        with use_locale(await services.units.language_of(admin)):
            text = "⚠️ " + _("The backup failed: {problem}\nThe older backups are kept. See the bot's log "
                             "and the backup folder {folder}.").format(
                problem=f"<code>{detail}</code>", folder=f"<code>{html.escape(str(folder))}</code>")
        await services.outbox.queue_texts([admin], text, now)
    services.sender.wake()
