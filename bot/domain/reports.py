"""The figures the ministry publishes: period reports with cohorts, public statistics without
personal data, fairness figures, and exports. Reads only."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.db import Database, from_db, to_db
from bot.domain.errors import Invalid
from bot.domain.scrub import Scrubber, scrubber
from bot.domain.units import UnitService
from bot.i18n import _
from bot.inputs import YEAR_MAX, YEAR_MIN, ascii_digits, excerpt

SMALL = 5          # counts under this are shown as "<5" in public figures
MIN_RANKED = 10    # no unit is ranked with fewer cases than this
EXPORT_BATCH = 2000  # rows an export fetches at a time: an export of any size holds one batch
CASE_HEADER = ("case", "external_ref", "status", "outcome", "source", "category", "place", "unit",
               "priority", "received_at", "created_at", "due_at", "resolved_at", "closed_at",
               "reopen_count", "handoffs", "bouncing", "merged_into", "summary", "description")
PERSONAL_HEADER = ("citizen_name", "citizen_contact")
EVENT_HEADER = ("case", "at", "actor", "action", "from_status", "to_status", "note")
ERASED = "[erased]"  # in an export, the free text of an event erased with the case's personal data


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime  # UTC, inclusive
    end: datetime    # UTC, exclusive
    kind: str        # month | quarter | year


_PERIOD = re.compile(r"([0-9]{4})(?:-([0-9]{2})|-Q([0-9]))?")


def parse_period(text: str, tz: ZoneInfo) -> Period:
    """YYYY-MM, YYYY-Qn or YYYY (ASCII or Khmer digits), as local calendar boundaries; a year
    from YEAR_MIN to YEAR_MAX."""
    normal = ascii_digits(text.strip()).upper()
    m = _PERIOD.fullmatch(normal)
    month = int(m[2]) if m and m[2] else None
    quarter = int(m[3]) if m and m[3] else None
    if m is None or (month is not None and not 1 <= month <= 12) or (
            quarter is not None and not 1 <= quarter <= 4):
        raise Invalid(_("“{p}” is not a period like 2026-04, 2026-Q2 or 2026.").format(p=excerpt(text)))
    year = int(m[1])
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise Invalid(_("“{p}” is out of range: give a year from {first} to {last}.").format(
            p=excerpt(text), first=YEAR_MIN, last=YEAR_MAX))
    if month is not None:
        first, kind = date(year, month, 1), "month"
        last = date(year + (month == 12), month % 12 + 1, 1)
    elif quarter is not None:
        first, kind = date(year, 3 * quarter - 2, 1), "quarter"
        last = date(year + (quarter == 4), (3 * quarter) % 12 + 1, 1)
    else:
        first, last, kind = date(year, 1, 1), date(year + 1, 1, 1), "year"
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(last, time(0), tzinfo=tz)
    return Period(normal, start, end, kind)


@dataclass
class Cohort:
    year: int
    open_at_start: int
    resolved_since: int
    merged_since: int
    still_open: int


@dataclass
class Report:
    period: Period
    received: int = 0
    intake_resolved: int = 0          # of those received in the period: resolved by its end
    intake_open: int = 0              # of those received in the period: still being addressed
    resolved: int = 0                 # resolved in the period (awaiting verification or closed since)
    closed: dict[str, int] = field(default_factory=dict)  # outcome → count, closed in the period
    in_progress_at_end: int = 0       # received before the end, not resolved by then
    awaiting_verification_at_end: int = 0
    forwarded: dict[str, tuple[int, int]] = field(default_factory=dict)  # institution → (sent, acked)
    returned: int = 0                 # "not ours" and declines in the period
    bouncing: int = 0                 # bouncing now, unfinished
    reopened: int = 0
    merged: int = 0
    median_days_to_close: float | None = None
    p90_days_to_close: float | None = None
    overdue_at_end: int = 0
    cohorts: list[Cohort] = field(default_factory=list)
    weekly: list[tuple[date, int, int]] = field(default_factory=list)  # week start, received, closed
    open_ages: list[int] = field(default_factory=list)                 # days, open cases at the end


@dataclass(frozen=True)
class CaseFacts:
    """What the figures need of one case; no personal data, no text."""

    id: int
    unit_id: int | None
    place_unit_id: int
    category: str
    status: str
    received_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    due_at: datetime | None
    bouncing: bool


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


class ReportService:
    def __init__(self, db: Database, units: UnitService, tz: ZoneInfo) -> None:
        self.db = db
        self.units = units
        self.tz = tz

    async def facts(self, scope: set[int] | None) -> Iterator[CaseFacts]:
        """Every case in scope (its unit, or its place, within the scope units)."""
        return iter([f async for f in self.stream_facts(scope)])

    async def stream_facts(self, scope: set[int] | None) -> AsyncIterator[CaseFacts]:
        """``facts`` a batch at a time: a pass over every case without holding them all."""
        async for r in self._stream(
                "SELECT c.id, c.unit_id, c.place_unit_id, cat.key AS category, c.status, c.received_at,"
                " c.resolved_at, c.closed_at, c.outcome, c.due_at, c.bouncing"
                " FROM cases c JOIN categories cat ON cat.id = c.category_id", ()):
            if scope is not None and r["unit_id"] not in scope and r["place_unit_id"] not in scope:
                continue
            yield CaseFacts(
                r["id"], r["unit_id"], r["place_unit_id"], r["category"], r["status"],
                from_db(r["received_at"]) or datetime.min, from_db(r["resolved_at"]),
                from_db(r["closed_at"]), r["outcome"], from_db(r["due_at"]), bool(r["bouncing"]))

    async def report(self, period: Period, scope: set[int] | None, now: datetime) -> Report:
        rep = Report(period)
        start, end = period.start, period.end
        cut = min(end, now)
        ids: set[int] = set()
        days_to_close: list[float] = []
        week0 = (start.astimezone(self.tz).date() - timedelta(days=start.astimezone(self.tz).weekday()))
        weeks: dict[date, list[int]] = {}
        d = week0
        while datetime.combine(d, time(0), tzinfo=self.tz) < end:
            weeks[d] = [0, 0]
            d += timedelta(days=7)
        cohorts: dict[int, Cohort] = {}
        async for f in self.stream_facts(scope):  # one pass; the cases are not held
            ids.add(f.id)
            local_received = f.received_at.astimezone(self.tz)
            finished_at = f.closed_at if f.outcome in ("confirmed", "unreachable", "merged") else None
            done_by = f.resolved_at or finished_at  # resolved (or closed, or merged) at
            if start <= f.received_at < end:
                rep.received += 1
                if f.outcome == "merged":
                    pass
                elif done_by is not None and done_by < cut:
                    rep.intake_resolved += 1
                else:
                    rep.intake_open += 1
                wk = local_received.date() - timedelta(days=local_received.weekday())
                if wk in weeks:
                    weeks[wk][0] += 1
            if f.resolved_at and start <= f.resolved_at < end and f.outcome != "merged":
                rep.resolved += 1
            if finished_at and start <= finished_at < end:
                if f.outcome == "merged":
                    rep.merged += 1
                else:
                    rep.closed[f.outcome or "confirmed"] = rep.closed.get(f.outcome or "confirmed", 0) + 1
                    days_to_close.append((finished_at - f.received_at).total_seconds() / 86400)
                    local_closed = finished_at.astimezone(self.tz)
                    wk = local_closed.date() - timedelta(days=local_closed.weekday())
                    if wk in weeks:
                        weeks[wk][1] += 1
            received_by_end = f.received_at < cut
            finished_by_end = finished_at is not None and finished_at < cut
            if received_by_end and not finished_by_end:
                if f.resolved_at is not None and f.resolved_at < cut:
                    rep.awaiting_verification_at_end += 1
                else:
                    rep.in_progress_at_end += 1
                    rep.open_ages.append(max(0, (cut - f.received_at).days))
                    if f.due_at is not None and f.due_at < cut:
                        rep.overdue_at_end += 1
            if f.bouncing and f.status not in ("closed", "merged"):
                rep.bouncing += 1
            # Cohorts: earlier intake years with cases still open when the period began.
            year = local_received.year
            if year < start.astimezone(self.tz).year and f.received_at < start and not (
                    done_by is not None and done_by < start):
                c = cohorts.setdefault(year, Cohort(year, 0, 0, 0, 0))
                c.open_at_start += 1
                if f.outcome == "merged" and finished_at is not None and finished_at < cut:
                    c.merged_since += 1
                elif done_by is not None and done_by < cut:
                    c.resolved_since += 1
                else:
                    c.still_open += 1
        rep.cohorts = [cohorts[y] for y in sorted(cohorts)]
        rep.median_days_to_close = round(statistics.median(days_to_close), 1) if days_to_close else None
        rep.p90_days_to_close = _percentile(days_to_close, 0.9)
        rep.weekly = [(wk, v[0], v[1]) for wk, v in weeks.items()]
        await self._events(rep, ids, start, end)
        return rep

    async def _events(self, rep: Report, ids: set[int], start: datetime, end: datetime) -> None:
        rows = await self.db.all(
            "SELECT e.case_id, e.action, e.data,"
            " EXISTS(SELECT 1 FROM events a WHERE a.case_id = e.case_id AND a.action = 'acknowledge'"
            "        AND a.id > e.id) AS acked"
            " FROM events e WHERE e.at >= ? AND e.at < ?"
            " AND e.action IN ('forward', 'return', 'decline', 'reopen')",
            (to_db(start), to_db(end)))
        for r in rows:
            if r["case_id"] not in ids:
                continue
            if r["action"] == "forward":
                name = str(json.loads(r["data"]).get("unit_name", "?"))
                sent, acked = rep.forwarded.get(name, (0, 0))
                rep.forwarded[name] = (sent + 1, acked + int(r["acked"]))
            elif r["action"] in ("return", "decline"):
                rep.returned += 1
            else:
                rep.reopened += 1

    # --- the public view ---------------------------------------------------------------------

    def province_of(self, unit_id: int, kinds: dict[int, str], names: dict[int, str]) -> str:
        for uid in self.units.ancestors_or_self(unit_id):
            if kinds.get(uid) == "province":
                return names[uid]
        return names.get(unit_id, "?")

    async def public(self, now: datetime) -> dict[str, list[dict[str, object]]]:
        """Figures by month, province and category; small counts suppressed; fairness figures."""
        units = await self.units.all()
        kinds = {u.id: u.kind for u in units}
        names = {u.id: u.name for u in units}
        cat_names = {c.key: c.name for c in await self.units.categories()}
        facts = list(await self.facts(None))
        groups: dict[str, dict[str, list[CaseFacts]]] = {"month": defaultdict(list),
                                                         "province": defaultdict(list),
                                                         "category": defaultdict(list)}
        for f in facts:
            if f.status == "merged":
                continue
            groups["month"][f.received_at.astimezone(self.tz).strftime("%Y-%m")].append(f)
            groups["province"][self.province_of(f.place_unit_id, kinds, names)].append(f)
            groups["category"][cat_names.get(f.category, f.category)].append(f)
        out_of_order = self._out_of_order(facts)
        result: dict[str, list[dict[str, object]]] = {}
        for dimension, by_key in groups.items():
            rows = []
            ranked = sorted(by_key.items())
            if dimension != "month":  # never rank a unit on fewer than MIN_RANKED cases
                small = [(k, v) for k, v in ranked if len(v) < MIN_RANKED]
                ranked = [(k, v) for k, v in ranked if len(v) >= MIN_RANKED]
                if small:
                    ranked.append((_("others (fewer than {n} cases each)").format(n=MIN_RANKED),
                                   [f for _k, v in small for f in v]))
            for key, cases in ranked:
                rows.append({dimension: key, **self._figures(cases, now, out_of_order,
                                                           fairness=dimension != "month")})
            result[dimension] = rows
        return result

    def _figures(self, cases: list[CaseFacts], now: datetime, out_of_order: set[int], *,
                 fairness: bool) -> dict[str, object]:
        closed = [f for f in cases if f.outcome in ("confirmed", "unreachable") and f.closed_at]
        forwarded = [f for f in cases if f.status in ("forwarded", "acknowledged")]
        open_ = [f for f in cases if f.status not in ("closed", "merged", "resolved")]
        days = [(f.closed_at - f.received_at).total_seconds() / 86400 for f in closed if f.closed_at]
        figures: dict[str, object] = {
            "received": suppress(len(cases)), "closed": suppress(len(closed)),
            "in_progress": suppress(len(open_)), "forwarded": suppress(len(forwarded)),
            "median_days_to_close": round(statistics.median(days), 1) if len(days) >= SMALL else None,
        }
        if fairness:
            overdue = [f for f in open_ if f.due_at is not None and f.due_at < now]
            figures["share_overdue"] = (round(len(overdue) / len(open_), 2)
                                        if len(open_) >= SMALL else None)
            figures["out_of_order_closes"] = suppress(sum(1 for f in closed if f.id in out_of_order))
        return figures

    @staticmethod
    def _out_of_order(facts: list[CaseFacts]) -> set[int]:
        """Cases closed while an older case of the same unit and category was still waiting."""
        by_group: dict[tuple[int | None, str], list[CaseFacts]] = defaultdict(list)
        for f in facts:
            if f.status != "merged":
                by_group[(f.unit_id or f.place_unit_id, f.category)].append(f)
        found: set[int] = set()
        far = datetime.max.replace(tzinfo=ZoneInfo("UTC"))
        for cases in by_group.values():
            cases.sort(key=lambda f: f.received_at)
            latest_older = None  # the latest time an older case was still waiting
            for f in cases:
                if f.closed_at is not None and latest_older is not None and latest_older > f.closed_at:
                    found.add(f.id)
                waiting_until = f.closed_at or far
                latest_older = waiting_until if latest_older is None else max(latest_older, waiting_until)
        return found

    # --- exports -----------------------------------------------------------------------------

    def export_headers(self, personal: bool) -> tuple[list[str], list[str]]:
        """The header of the cases sheet and of the events sheet."""
        return [*CASE_HEADER, *(PERSONAL_HEADER if personal else ())], list(EVENT_HEADER)

    async def _stream(self, sql: str, params: Sequence[object]) -> AsyncGenerator[sqlite3.Row, None]:
        """The rows of a query a batch at a time, not all at once."""
        async with self.db.conn.execute(sql, tuple(params)) as cursor:
            while batch := await cursor.fetchmany(EXPORT_BATCH):
                for row in batch:
                    yield row

    @staticmethod
    def _period_where(period: Period | None) -> tuple[str, list[object]]:
        if period is None:
            return "", []
        return " WHERE c.received_at >= ? AND c.received_at < ?", [to_db(period.start), to_db(period.end)]

    async def export_cases(self, period: Period | None, scope: set[int] | None,
                           personal: bool) -> AsyncGenerator[list[object], None]:
        """The cases received in the period (everything without one), a row each, by id. Without
        personal data, no name or contact, and the summary and description scrubbed of the
        case's names, contacts and phone numbers (``bot/domain/scrub.py``). Closed early
        (``aclose``), it closes its cursor there and then."""
        where, params = self._period_where(period)
        sql = ("SELECT c.*, cat.key AS category_key, pu.key AS place_key, u.key AS unit_key, "
               + _OTHERS + " FROM cases c JOIN categories cat ON cat.id = c.category_id"
               " JOIN units pu ON pu.id = c.place_unit_id LEFT JOIN units u ON u.id = c.unit_id"
               + where + " ORDER BY c.id")
        async with aclosing(self._stream(sql, params)) as rows:
            async for r in rows:
                if scope is not None and r["unit_id"] not in scope and r["place_unit_id"] not in scope:
                    continue
                text = _keep if personal else _scrubber(r)
                line: list[object] = [
                    r["id"], r["external_ref"], r["status"], r["outcome"], r["source"], r["category_key"],
                    r["place_key"], r["unit_key"], r["priority"], r["received_at"], r["created_at"],
                    r["due_at"], r["resolved_at"], r["closed_at"], r["reopen_count"], r["handoffs"],
                    r["bouncing"], r["merged_into"], text(r["summary"]), text(r["description"])]
                if personal:
                    line += [r["citizen_name"], r["citizen_contact"]]
                yield line

    async def export_events(self, period: Period | None, scope: set[int] | None,
                            personal: bool = True) -> AsyncGenerator[list[object], None]:
        """The events of the cases ``export_cases`` gives, by case and in order; without personal
        data, their notes scrubbed as the cases' texts are. Closed early (``aclose``), it closes
        its cursor there and then."""
        where, params = self._period_where(period)
        # An event's free text is kept apart (bot/audit.py); an erased one reads ERASED.
        note = (f"CASE WHEN t.event_id IS NULL AND e.note_commit IS NOT NULL THEN '{ERASED}'"
                " ELSE IFNULL(t.text, '') END AS note")
        texts = " LEFT JOIN event_texts t ON t.event_id = e.id"
        if where or scope is not None or not personal:  # only the events of the cases exported
            sql = ("SELECT e.case_id, e.at, e.actor_name, e.action, e.from_status, e.to_status,"
                   f" {note}, c.unit_id, c.place_unit_id"
                   + ("" if personal else ", c.citizen_name, c.citizen_contact, " + _OTHERS)
                   + " FROM events e JOIN cases c ON c.id = e.case_id" + texts + where
                   + " ORDER BY e.case_id, e.id")
        else:  # every case: every event
            sql = ("SELECT e.case_id, e.at, e.actor_name, e.action, e.from_status, e.to_status,"
                   f" {note} FROM events e" + texts + " ORDER BY e.case_id, e.id")
        async with aclosing(self._stream(sql, params)) as rows:
            async for e in rows:
                if scope is not None and e["unit_id"] not in scope and e["place_unit_id"] not in scope:
                    continue
                note = e["note"] if personal else _scrubber(e)(e["note"])
                yield [e["case_id"], e["at"], e["actor_name"], e["action"], e["from_status"],
                       e["to_status"], note]


# The further citizens behind a case (from merged duplicates), as JSON [[name, contact], ...].
_OTHERS = ("(SELECT json_group_array(json_array(cc.name, cc.contact)) FROM case_contacts cc"
           " WHERE cc.case_id = c.id) AS others")


def _keep(text: str) -> str:
    return text


def _scrubber(row: sqlite3.Row) -> Scrubber:
    """The scrubber of a case's personal data: its citizen's and those of its merged duplicates
    (the same for every event of a case: ``scrubber`` keeps the last few)."""
    others = [(str(n), str(c)) for n, c in json.loads(row["others"] or "[]")]
    return scrubber((row["citizen_name"], *(n for n, _c in others)),
                    (row["citizen_contact"], *(c for _n, c in others)))


def suppress(count: int) -> int | str:
    """Public counts under SMALL are shown as "<5" so that no citizen can be singled out (a text:
    escape it in HTML)."""
    return f"<{SMALL}" if 0 < count < SMALL else count


