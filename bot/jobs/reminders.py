"""The one repeating job: reminders and escalations that are due, then the daily digests, then the
daily check of the audit chain (bot/jobs/audit.py).

Everything it needs is in the database (``cases.next_action_at``, ``digest_log``), so a restart
simply carries on; the first run happens at start, which also sends a digest missed while down.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.ext import ContextTypes

from bot.app import SERVICES, Services
from bot.jobs import audit as audit_job

log = logging.getLogger(__name__)
BATCH = 200


async def tick(context: ContextTypes.DEFAULT_TYPE) -> None:
    services: Services = context.application.bot_data[SERVICES]
    await run_once(services)


async def run_once(services: Services) -> int:
    """Handle every reminder due now (in batches) and queue the digests due today."""
    handled: set[int] = set()
    now = services.clock()
    while True:
        due = [c for c in await services.cases.due_reminders(now, BATCH) if c not in handled]
        for case_id in due:
            handled.add(case_id)
            try:
                await services.cases.run_reminder(case_id, now)
            except Exception:  # one broken case must not stop the others, nor come back at once
                log.exception("reminder for case %s failed", case_id)
                await services.cases.hold_reminder(case_id, now + timedelta(hours=1))
        if not due:
            break
    count = len(handled)
    digests = getattr(services, "digests", None)
    if digests is not None:
        count += await digests.send_due(now)
    # After the digests, which it must not hold up: on a large database it reads for a while.
    count += await audit_job.daily(services.cases, now)
    return count
