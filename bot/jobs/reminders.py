"""The one repeating job: reminders and escalations that are due, then the daily digests, then the
daily check of the audit chain (bot/jobs/audit.py).

Everything it needs is in the database (``cases.next_action_at``, ``digest_log``), so a restart
simply carries on; the first run happens at start, which also sends a digest missed while down.
What a run's warnings, reminders and escalations tell goes one message per chat, however many
cases are due (``CaseService.run_ladder``): a backlog of hundreds does not flood anyone.
"""

from __future__ import annotations

from telegram.ext import ContextTypes

from bot.app import SERVICES, Services
from bot.jobs import audit as audit_job


async def tick(context: ContextTypes.DEFAULT_TYPE) -> None:
    services: Services = context.application.bot_data[SERVICES]
    await run_once(services)


async def run_once(services: Services) -> int:
    """Handle every case whose ladder is due now, then queue the digests due today."""
    now = services.clock()
    count = await services.cases.run_ladder(now)
    digests = getattr(services, "digests", None)
    if digests is not None:
        count += await digests.send_due(now)
    # After the digests, which it must not hold up: on a large database it reads for a while.
    count += await audit_job.daily(services.cases, now)
    return count
