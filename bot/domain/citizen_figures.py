"""Citizens in the loop, in figures: cases by the channel they came by (their source), how the
confirmed cases were confirmed (by the citizen themself, or by phone), withdrawals, and the
requests the working group marked abusive, by source.

Read from what does not change afterwards, so that a past period's figures hold: a case's source
and date of receipt; the events (a verification records ``via`` in its data: ``citizen`` or
``phone``; older ones, from before citizens could answer, were by phone; a withdrawal); the
requests' decisions (when a request was withdrawn or marked abusive). The public view hides small
counts as the other public figures do (bot/domain/disclosure.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.db import Database, to_db
from bot.domain.disclosure import SMALL, protect, suppress

BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class CitizenFigures:
    by_source: dict[str, int] = field(default_factory=dict)  # cases received, by source
    confirmed_by_citizen: int = 0  # confirmed cases: by the citizen's own word
    confirmed_by_phone: int = 0    # … by the working group, by phone
    withdrawn_cases: int = 0       # cases withdrawn by their citizen
    withdrawn_requests: int = 0    # requests withdrawn before the working group made a case of them
    abusive: dict[str, int] = field(default_factory=dict)  # requests marked abusive, by source

    @property
    def confirmed(self) -> int:
        return self.confirmed_by_citizen + self.confirmed_by_phone

    @property
    def withdrawn(self) -> int:
        return self.withdrawn_cases + self.withdrawn_requests

    @property
    def share_by_citizen(self) -> float | None:
        """Of the confirmed cases, the share the citizen confirmed themself (None: none confirmed)."""
        return round(self.confirmed_by_citizen / self.confirmed, 2) if self.confirmed else None


async def citizen_figures(db: Database, start: datetime | None, end: datetime) -> CitizenFigures:
    """The figures of [start, end) (``start`` None: since the beginning)."""
    a, b = to_db(start or BEGINNING), to_db(end)
    rows = await db.batch(
        ("SELECT source, COUNT(*) FROM cases WHERE received_at >= ? AND received_at < ?"
         " GROUP BY source ORDER BY source", (a, b)),
        # Read as values and counted here: comparing a JSON value to a text differs by store.
        ("SELECT json_extract(data, '$.via') AS via, json_extract(data, '$.outcome') AS outcome"
         " FROM events WHERE action = 'verify' AND at >= ? AND at < ?", (a, b)),
        ("SELECT COUNT(*) FROM events WHERE action = 'withdraw' AND at >= ? AND at < ?", (a, b)),
        ("SELECT COUNT(*) FROM requests WHERE status = 'withdrawn' AND case_id IS NULL"
         " AND COALESCE(decided_at, received_at) >= ? AND COALESCE(decided_at, received_at) < ?", (a, b)),
        ("SELECT source, COUNT(*) FROM requests WHERE status = 'abusive'"
         " AND COALESCE(decided_at, received_at) >= ? AND COALESCE(decided_at, received_at) < ?"
         " GROUP BY source ORDER BY source", (a, b)),
    )
    sources, confirmed, withdrawn, withdrawn_requests, abusive = rows
    figures = CitizenFigures({str(r[0]): int(r[1]) for r in sources})
    for via, outcome in confirmed:
        if outcome != "confirmed":
            continue
        if via == "citizen":
            figures.confirmed_by_citizen += 1
        else:  # "phone", or before citizens were in the loop
            figures.confirmed_by_phone += 1
    figures.withdrawn_cases = int(withdrawn[0][0]) if withdrawn else 0
    figures.withdrawn_requests = int(withdrawn_requests[0][0]) if withdrawn_requests else 0
    figures.abusive = {str(r[0]): int(r[1]) for r in abusive}
    return figures


def public(figures: CitizenFigures) -> dict[str, object]:
    """What the public figures show of them: small counts hidden (and the counts that would give
    them away); the share confirmed by citizens only when neither part is a small count."""
    by_source: list[dict[str, object]] = [
        {"source": k, "cases": v} for k, v in sorted(figures.by_source.items())]
    protect(by_source, ("cases",))
    abusive: list[dict[str, object]] = [
        {"source": k, "requests": v} for k, v in sorted(figures.abusive.items())]
    protect(abusive, ("requests",))
    parts = (figures.confirmed_by_citizen, figures.confirmed_by_phone)
    shown = figures.confirmed and all(p == 0 or p >= SMALL for p in parts)
    return {
        "by_source": by_source,
        "confirmed": suppress(figures.confirmed),
        "share_by_citizen": figures.share_by_citizen if shown else None,
        "withdrawn": suppress(figures.withdrawn),
        "abusive": abusive,
    }
