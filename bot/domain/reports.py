"""The figures the ministry publishes: period reports with cohorts, public statistics without
personal data, fairness figures, and exports. Reads only."""

from __future__ import annotations

import heapq
import json
import re
import statistics
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.db import Database, Row, to_db
from bot.domain.citizen_figures import CitizenFigures, citizen_figures
from bot.domain.disclosure import SMALL, pool, protect
from bot.domain.errors import Invalid
from bot.domain.history import DONE, EVENTS_SQL, CaseHistory, build
from bot.domain.scrub import Scrubber, scrubber
from bot.domain.units import UnitService
from bot.i18n import _
from bot.inputs import YEAR_MAX, YEAR_MIN, ascii_digits, excerpt

EXPORT_BATCH = 2000  # rows an export fetches at a time: an export of any size holds one batch
CASE_HEADER = ("case", "external_ref", "status", "outcome", "source", "category", "place", "unit",
               "priority", "received_at", "created_at", "due_at", "resolved_at", "closed_at",
               "reopen_count", "handoffs", "bouncing", "merged_into", "summary", "description")
# With a period: which of the report's figures the case is in (bot/domain/history.py).
PERIOD_HEADER = ("received_in_period", "resolved_in_period", "closed_in_period", "reopened_in_period",
                 "merged_in_period", "status_at_end", "overdue_at_end")
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
    """A period's figures, from the cases' history (bot/domain/history.py): "at the end" is the
    moment the period ends (or now, for the current period)."""

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
    bouncing: int = 0                 # bouncing at the end, unfinished
    reopened: int = 0
    merged: int = 0
    median_days_to_close: float | None = None
    p90_days_to_close: float | None = None
    overdue_at_end: int = 0           # in progress at the end and past the deadline in force then
    cohorts: list[Cohort] = field(default_factory=list)
    weekly: list[tuple[date, int, int]] = field(default_factory=list)  # week start, received, closed
    open_ages: list[int] = field(default_factory=list)                 # days, in progress at the end
    awaiting_ages: list[int] = field(default_factory=list)             # days, awaiting verification
    first_day: date | None = None     # the period's first local day, and its last one so far (today
    last_day: date | None = None      # for the current period): weeks beyond are partial or left out
    fairness: dict[str, list[dict[str, object]]] | None = None  # with report(…, fairness=True)
    citizens: CitizenFigures | None = None  # by channel, confirmed by whom (a ministry-wide report)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


def _cut(end: datetime | None, now: datetime) -> datetime:
    """The end of what a report reads: the period's end, or, for the current period, now (what
    happened at this very instant included)."""
    moment = now + timedelta(microseconds=1)
    return moment if end is None else min(end, moment)


def _days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400


@dataclass(slots=True)
class _Tally:
    """What a case adds to a row of fairness or public figures (its history is not kept)."""

    id: int
    days: float | None    # from receipt to the close counted; None: no close counted
    in_progress: bool     # at the end (or now)
    overdue: bool
    forwarded: bool


class OutOfOrder:
    """Closes out of order, gathered a case at a time: the cases closed in [start, end) while an
    older case was still waiting with the same unit in the same category. Older: received on an
    earlier local day (cases received the same day are not older than each other). Waiting:
    received (or reopened) and not yet closed or merged, a resolution awaiting verification
    included. The unit: the one the case was with at that moment (its place while in the working
    group's queue). Each case leaves a few numbers per stretch of waiting and per close."""

    STOP, CLOSE, BEGIN = 0, 1, 2  # at the same moment: one stops waiting, one closes, one begins

    def __init__(self, tz: ZoneInfo, start: datetime, end: datetime) -> None:
        self.tz = tz
        self.start, self.end = start, end
        # Per unit and category: (when, what, the case's day of receipt, the case).
        self.marks: dict[tuple[int, str], list[tuple[float, int, int, int]]] = defaultdict(list)

    def add(self, h: CaseHistory) -> None:
        day = h.received_at.astimezone(self.tz).date().toordinal()
        for since, until, unit in h.waiting():
            if until is not None and until <= since:
                continue  # with that unit for no time at all
            marks = self.marks[(unit, h.category)]
            marks.append((since.timestamp(), self.BEGIN, day, h.id))
            if until is not None:
                marks.append((until.timestamp(), self.STOP, day, h.id))
        for when, _outcome in h.closed:
            if self.start <= when < self.end:
                self.marks[(h.unit_at(when), h.category)].append((when.timestamp(), self.CLOSE, day, h.id))

    def flagged(self) -> set[int]:
        found: set[int] = set()
        for events in self.marks.values():
            events.sort(key=lambda e: (e[0], e[1]))
            waiting: list[int] = []           # a heap of the days of the cases waiting
            gone: dict[int, int] = defaultdict(int)
            for _when, kind, day, case_id in events:
                if kind == self.BEGIN:
                    heapq.heappush(waiting, day)
                elif kind == self.STOP:
                    gone[day] += 1
                else:
                    while waiting and gone[waiting[0]]:
                        gone[heapq.heappop(waiting)] -= 1
                    if waiting and waiting[0] < day:
                        found.add(case_id)
        return found


def _pooled(groups: dict[str, list[_Tally]]) -> list[tuple[str, list[_Tally]]]:
    """The rows of a table: the groups shown on their own, then the pool (``pool``)."""
    shown, pooled, members = pool(groups)
    if pooled:
        shown.append((_("others, pooled ({n})").format(n=len(pooled)), members))
    return shown


class Fairness:
    """The fairness figures of a period, gathered a case at a time (``ReportService.fairness``):
    each case leaves a few numbers behind, not its history."""

    def __init__(self, tz: ZoneInfo, start: datetime, cut: datetime,
                 province: Callable[[CaseHistory], str], category: Callable[[CaseHistory], str]) -> None:
        self.start, self.cut = start, cut
        self.order = OutOfOrder(tz, start, cut)
        self.keys = {"province": province, "category": category}
        self.groups: dict[str, dict[str, list[_Tally]]] = {"province": defaultdict(list),
                                                           "category": defaultdict(list)}

    def add(self, h: CaseHistory) -> None:
        at_start, at_end = h.at(self.start), h.at(self.cut)
        if at_end is None or (at_start is not None and not at_start.unfinished):
            return  # not concerned: received after the period, or finished before it
        self.order.add(h)
        close = h.last_close(self.start, self.cut)
        tally = _Tally(h.id, None if close is None else _days(h.received_at, close[0]),
                       at_end.in_progress, at_end.overdue(self.cut), False)
        for dimension, key in self.keys.items():
            self.groups[dimension][key(h)].append(tally)

    def rows(self) -> dict[str, list[dict[str, object]]]:
        flagged = self.order.flagged()
        result: dict[str, list[dict[str, object]]] = {}
        for dimension, by_key in self.groups.items():
            rows = []
            for name, tallies in _pooled(by_key):
                days = [t.days for t in tallies if t.days is not None]
                open_ = [t for t in tallies if t.in_progress]
                rows.append({
                    dimension: name, "cases": len(tallies), "closed": len(days), "in_progress": len(open_),
                    "median_days_to_close": round(statistics.median(days), 1) if len(days) >= SMALL else None,
                    "share_overdue": (round(sum(t.overdue for t in open_) / len(open_), 2)
                                      if len(open_) >= SMALL else None),
                    "out_of_order_closes": sum(1 for t in tallies if t.days is not None and t.id in flagged)})
            protect(rows, ("cases", "closed", "in_progress", "out_of_order_closes"))
            result[dimension] = rows
        return result


class ReportService:
    def __init__(self, db: Database, units: UnitService, tz: ZoneInfo) -> None:
        self.db = db
        self.units = units
        self.tz = tz

    # --- the cases' history ------------------------------------------------------------------

    async def histories(self, scope: set[int] | None, *,
                        rows: str = "") -> AsyncGenerator[CaseHistory, None]:
        """Every case in scope (its unit, or its place, within the scope units) with its history,
        by case number, a batch at a time: a pass over every case and event without holding them.
        ``rows``: an SQL statement of whole case rows by id, kept in ``CaseHistory.row``."""
        keys = {str(r["key"]): int(r["id"]) for r in await self.db.all("SELECT id, key FROM units")}
        case_sql = ("SELECT c.id, c.unit_id, c.place_unit_id, cat.key AS category, c.status, c.received_at,"
                    " c.due_at, c.resolved_at FROM cases c JOIN categories cat ON cat.id = c.category_id"
                    " ORDER BY c.id")
        async with aclosing(self._stream(case_sql, ())) as cases, \
                aclosing(self._stream(EVENTS_SQL, ())) as events, \
                aclosing(self._stream(rows, ()) if rows else _nothing()) as full:
            e = await anext(events, None)
            r = await anext(full, None)
            async for c in cases:
                case_id = c["id"]
                mine: list[Row] = []
                while e is not None and e["case_id"] <= case_id:
                    if e["case_id"] == case_id:
                        mine.append(e)
                    e = await anext(events, None)
                while r is not None and r["id"] < case_id:
                    r = await anext(full, None)
                if scope is not None and c["unit_id"] not in scope and c["place_unit_id"] not in scope:
                    continue
                h = build(c, mine, keys)
                if r is not None and r["id"] == case_id:
                    h.row = r
                yield h

    # --- a period's report -------------------------------------------------------------------

    async def report(self, period: Period, scope: set[int] | None, now: datetime, *,
                     fairness: bool = False) -> Report:
        """The period's figures; with ``fairness``, its fairness figures too (``Report.fairness``,
        as ``fairness`` gives them), in the same pass over the cases."""
        rep = Report(period)
        tally = await self._fairness(period, now) if fairness else None
        start, end = period.start, period.end
        cut = _cut(end, now)
        rep.first_day = start.astimezone(self.tz).date()
        rep.last_day = (cut.astimezone(self.tz) - timedelta(microseconds=1)).date()
        ids: set[int] = set()
        days_to_close: list[float] = []
        week0 = rep.first_day - timedelta(days=rep.first_day.weekday())
        weeks: dict[date, list[int]] = {}
        d = week0
        while d <= rep.last_day:
            weeks[d] = [0, 0]
            d += timedelta(days=7)
        start_year = start.astimezone(self.tz).year
        cohorts: dict[int, Cohort] = {}
        async for h in self.histories(scope):  # one pass; the cases are not held
            ids.add(h.id)
            if tally is not None:
                tally.add(h)
            at_end = h.at(cut)
            if at_end is None:
                continue  # received after the period (or after now)
            merged = at_end.status == "merged"
            local_received = h.received_at.astimezone(self.tz)
            if start <= h.received_at < end:
                rep.received += 1
                if merged:
                    pass
                elif at_end.status in DONE:
                    rep.intake_resolved += 1
                else:
                    rep.intake_open += 1
                wk = local_received.date() - timedelta(days=local_received.weekday())
                if wk in weeks:
                    weeks[wk][0] += 1
            if not merged and h.any_in(h.resolved, start, cut):
                rep.resolved += 1
            close = h.last_close(start, cut)
            if close is not None:
                rep.closed[close[1]] = rep.closed.get(close[1], 0) + 1
                days_to_close.append(_days(h.received_at, close[0]))
                local_closed = close[0].astimezone(self.tz)
                wk = local_closed.date() - timedelta(days=local_closed.weekday())
                if wk in weeks:
                    weeks[wk][1] += 1
            if h.merged_at is not None and start <= h.merged_at < cut:
                rep.merged += 1
            if at_end.unfinished:
                age = max(0, (cut - h.received_at).days)
                if at_end.status == "resolved":
                    rep.awaiting_verification_at_end += 1
                    rep.awaiting_ages.append(age)
                else:
                    rep.in_progress_at_end += 1
                    rep.open_ages.append(age)
                    if at_end.overdue(cut):
                        rep.overdue_at_end += 1
                if at_end.bouncing:
                    rep.bouncing += 1
            # Cohorts: earlier intake years with cases still open when the period began.
            year = local_received.year
            at_start = h.at(start)
            if year < start_year and at_start is not None and at_start.in_progress:
                c = cohorts.setdefault(year, Cohort(year, 0, 0, 0, 0))
                c.open_at_start += 1
                if merged:
                    c.merged_since += 1
                elif at_end.status in DONE:
                    c.resolved_since += 1
                else:
                    c.still_open += 1
        rep.cohorts = [cohorts[y] for y in sorted(cohorts)]
        rep.median_days_to_close = round(statistics.median(days_to_close), 1) if days_to_close else None
        rep.p90_days_to_close = _percentile(days_to_close, 0.9)
        rep.weekly = [(wk, v[0], v[1]) for wk, v in weeks.items()]
        if tally is not None:
            rep.fairness = tally.rows()
        await self._events(rep, ids, start, end, cut)
        if scope is None:
            rep.citizens = await citizen_figures(self.db, start, cut)
        return rep

    async def _events(self, rep: Report, ids: set[int], start: datetime, end: datetime,
                      cut: datetime) -> None:
        rows = await self.db.all(
            "SELECT e.case_id, e.action, e.data,"
            " EXISTS(SELECT 1 FROM events a WHERE a.case_id = e.case_id AND a.action = 'acknowledge'"
            "        AND a.id > e.id AND a.at < ?) AS acked"
            " FROM events e WHERE e.at >= ? AND e.at < ?"
            " AND e.action IN ('forward', 'return', 'decline', 'reopen')",
            (to_db(cut), to_db(start), to_db(end)))
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

    # --- fairness: the rights group's figures --------------------------------------------------

    def province_of(self, unit_id: int, kinds: dict[int, str], names: dict[int, str]) -> str:
        for uid in self.units.ancestors_or_self(unit_id):
            if kinds.get(uid) == "province":
                return names[uid]
        return names.get(unit_id, "?")

    async def _labels(self) -> tuple[Callable[[CaseHistory], str], Callable[[CaseHistory], str]]:
        """Each case's province and category, by name in the reader's language."""
        units = await self.units.all()
        kinds = {u.id: u.kind for u in units}
        names = {u.id: u.name for u in units}
        cat_names = {c.key: c.name for c in await self.units.categories()}
        provinces: dict[int, str] = {}

        def province(h: CaseHistory) -> str:
            if h.place_unit_id not in provinces:
                provinces[h.place_unit_id] = self.province_of(h.place_unit_id, kinds, names)
            return provinces[h.place_unit_id]

        def category(h: CaseHistory) -> str:
            return cat_names.get(h.category, h.category)

        return province, category

    async def fairness(self, period: Period | None, scope: set[int] | None,
                       now: datetime) -> dict[str, list[dict[str, object]]]:
        """Per province and per category: median days to close (of the cases closed), share
        overdue (of the cases in progress at the end) and closes out of order. For a period:
        the cases it concerned (received before its end and not finished before it began),
        closes in the period, and "at the end" its end; without one (all time): every case,
        every close, and now. Pooled and protected like the public figures. (``report`` gives
        them too, with ``fairness=True``, in the same pass.)"""
        tally = await self._fairness(period, now)
        async for h in self.histories(scope):
            tally.add(h)
        return tally.rows()

    async def _fairness(self, period: Period | None, now: datetime) -> Fairness:
        start = period.start if period else datetime.min.replace(tzinfo=UTC)
        province, category = await self._labels()
        return Fairness(self.tz, start, _cut(period.end if period else None, now), province, category)

    def out_of_order(self, cases: Sequence[CaseHistory], start: datetime, end: datetime) -> set[int]:
        """The cases closed in [start, end) while an older case was still waiting with the same
        unit in the same category (``OutOfOrder``)."""
        order = OutOfOrder(self.tz, start, end)
        for h in cases:
            order.add(h)
        return order.flagged()

    # --- the public view -----------------------------------------------------------------------

    async def public(self, now: datetime) -> dict[str, list[dict[str, object]]]:
        """All-time figures by month of receipt, province and category, as of now: received,
        closed, in progress and forwarded now, median days to close; by province and category
        also the share overdue now and the closes out of order (all time). Pooled and protected
        (bot/domain/disclosure.py): no personal data, no small count. One pass; each case
        leaves a few numbers behind, not its history."""
        province, category = await self._labels()
        cut = _cut(None, now)
        order = OutOfOrder(self.tz, datetime.min.replace(tzinfo=UTC), cut)
        groups: dict[str, dict[str, list[_Tally]]] = {
            "month": defaultdict(list), "province": defaultdict(list), "category": defaultdict(list)}
        async for h in self.histories(None):
            order.add(h)
            state = h.at(cut) or h.states[-1]
            if state.status == "merged":
                continue
            days = _days(h.received_at, h.closed[-1][0]) if state.status == "closed" and h.closed else None
            tally = _Tally(h.id, days, state.in_progress, state.overdue(cut),
                           state.status in ("forwarded", "acknowledged"))
            groups["month"][h.received_at.astimezone(self.tz).strftime("%Y-%m")].append(tally)
            groups["province"][province(h)].append(tally)
            groups["category"][category(h)].append(tally)
        flagged = order.flagged()
        result: dict[str, list[dict[str, object]]] = {}
        for dimension, by_key in groups.items():
            ranked = sorted(by_key.items()) if dimension == "month" else _pooled(by_key)
            rows = [{dimension: key, **self._figures(tallies, flagged, fairness=dimension != "month")}
                    for key, tallies in ranked]
            protect(rows, ("received", "closed", "in_progress", "forwarded", "out_of_order_closes"))
            result[dimension] = rows
        return result

    @staticmethod
    def _figures(tallies: list[_Tally], flagged: set[int], *, fairness: bool) -> dict[str, object]:
        days = [t.days for t in tallies if t.days is not None]
        open_ = [t for t in tallies if t.in_progress]
        figures: dict[str, object] = {
            "received": len(tallies), "closed": len(days), "in_progress": len(open_),
            "forwarded": sum(t.forwarded for t in tallies),
            "median_days_to_close": round(statistics.median(days), 1) if len(days) >= SMALL else None,
        }
        if fairness:
            figures["share_overdue"] = (round(sum(t.overdue for t in open_) / len(open_), 2)
                                        if len(open_) >= SMALL else None)
            figures["out_of_order_closes"] = sum(1 for t in tallies if t.days is not None and t.id in flagged)
        return figures

    # --- exports -----------------------------------------------------------------------------

    def export_headers(self, personal: bool, period: Period | None = None) -> tuple[list[str], list[str]]:
        """The header of the cases sheet and of the events sheet."""
        return ([*CASE_HEADER, *(PERIOD_HEADER if period else ()), *(PERSONAL_HEADER if personal else ())],
                list(EVENT_HEADER))

    async def _stream(self, sql: str, params: Sequence[object]) -> AsyncGenerator[Row, None]:
        """The rows of a query a batch at a time, not all at once."""
        async for row in self.db.stream(sql, params, EXPORT_BATCH):
            yield row

    def _local(self, text: str | None) -> datetime | None:
        """A stored UTC time as the local date and time (a date cell in a spreadsheet: its wall
        time is written)."""
        return None if text is None else datetime.fromisoformat(text).astimezone(self.tz)

    async def export_cases(self, period: Period | None, scope: set[int] | None, personal: bool,
                           now: datetime | None = None) -> AsyncGenerator[list[object], None]:
        """The cases a period's report counts, a row each, by id: received in the period, resolved,
        closed, reopened or merged in it, or unfinished at its end, with columns saying which
        (``PERIOD_HEADER``, from the history as the report reads it); without a period, every
        case. Times are local. Without personal data, no name or contact, and the summary and
        description scrubbed of the case's names, contacts and phone numbers
        (``bot/domain/scrub.py``). Closed early (``aclose``), it closes its cursors there and then."""
        sql = ("SELECT c.*, cat.key AS category_key, pu.key AS place_key, u.key AS unit_key, "
               + _OTHERS + " FROM cases c JOIN categories cat ON cat.id = c.category_id"
               " JOIN units pu ON pu.id = c.place_unit_id LEFT JOIN units u ON u.id = c.unit_id"
               " ORDER BY c.id")
        if period is None:
            async with aclosing(self._stream(sql, ())) as rows:
                async for r in rows:
                    if scope is not None and r["unit_id"] not in scope and r["place_unit_id"] not in scope:
                        continue
                    yield self._case_line(r, personal, ())
            return
        start, end = period.start, period.end
        cut = end if now is None else _cut(end, now)
        async with aclosing(self.histories(scope, rows=sql)) as histories:
            async for h in histories:
                at_end = h.at(cut)
                if at_end is None or h.row is None:
                    continue
                flags = (start <= h.received_at < end, h.any_in(h.resolved, start, cut),
                         h.last_close(start, cut) is not None, h.any_in(h.reopened, start, cut),
                         h.merged_at is not None and start <= h.merged_at < cut)
                if not (any(flags) or at_end.unfinished):
                    continue
                yield self._case_line(h.row, personal, (*flags, at_end.status, at_end.overdue(cut)))

    def _case_line(self, r: Row, personal: bool, period: Sequence[object]) -> list[object]:
        text = _keep if personal else _scrubber(r)
        local = self._local
        line: list[object] = [
            r["id"], r["external_ref"], r["status"], r["outcome"], r["source"], r["category_key"],
            r["place_key"], r["unit_key"], r["priority"], local(r["received_at"]), local(r["created_at"]),
            local(r["due_at"]), local(r["resolved_at"]), local(r["closed_at"]), r["reopen_count"],
            r["handoffs"], bool(r["bouncing"]), r["merged_into"], text(r["summary"]), text(r["description"]),
            *period]
        if personal:
            line += [r["citizen_name"], r["citizen_contact"]]
        return line

    async def export_events(self, cases: Sequence[int] | None, scope: set[int] | None,
                            personal: bool = True) -> AsyncGenerator[list[object], None]:
        """The events of the cases exported (``cases``: their numbers, ascending; None: every
        case in scope), by case and in order, at local times; without personal data, their
        notes scrubbed as the cases' texts are. Closed early (``aclose``), it closes its cursor
        there and then."""
        # An event's free text is kept apart (bot/audit.py); an erased one reads ERASED.
        note = (f"CASE WHEN t.event_id IS NULL AND e.note_commit IS NOT NULL THEN '{ERASED}'"
                " ELSE IFNULL(t.text, '') END AS note")
        texts = " LEFT JOIN event_texts t ON t.event_id = e.id"
        if cases is not None or scope is not None or not personal:
            sql = ("SELECT e.case_id, e.at, e.actor_name, e.action, e.from_status, e.to_status,"
                   f" {note}, c.unit_id, c.place_unit_id"
                   + ("" if personal else ", c.citizen_name, c.citizen_contact, " + _OTHERS)
                   + " FROM events e JOIN cases c ON c.id = e.case_id" + texts
                   + " ORDER BY e.case_id, e.id")
        else:  # every case: every event
            sql = ("SELECT e.case_id, e.at, e.actor_name, e.action, e.from_status, e.to_status,"
                   f" {note} FROM events e" + texts + " ORDER BY e.case_id, e.id")
        local = self._local
        wanted = 0  # the next exported case, in ``cases`` (both in order: a merge, nothing held)
        async with aclosing(self._stream(sql, ())) as rows:
            async for e in rows:
                if cases is not None:
                    while wanted < len(cases) and cases[wanted] < e["case_id"]:
                        wanted += 1
                    if wanted == len(cases):
                        break
                    if cases[wanted] != e["case_id"]:
                        continue
                if scope is not None and e["unit_id"] not in scope and e["place_unit_id"] not in scope:
                    continue
                note = e["note"] if personal else _scrubber(e)(e["note"])
                yield [e["case_id"], local(e["at"]), e["actor_name"], e["action"], e["from_status"],
                       e["to_status"], note]


# The further citizens behind a case (from merged duplicates), as JSON [[name, contact], ...].
_OTHERS = ("(SELECT json_group_array(json_array(cc.name, cc.contact)) FROM case_contacts cc"
           " WHERE cc.case_id = c.id) AS others")


def _keep(text: str) -> str:
    return text


def _scrubber(row: Row) -> Scrubber:
    """The scrubber of a case's personal data: its citizen's and those of its merged duplicates
    (the same for every event of a case: ``scrubber`` keeps the last few)."""
    others = [(str(n), str(c)) for n, c in json.loads(row["others"] or "[]")]
    return scrubber((row["citizen_name"], *(n for n, _c in others)),
                    (row["citizen_contact"], *(c for _n, c in others)))


async def _nothing() -> AsyncGenerator[Row, None]:
    return
    yield
