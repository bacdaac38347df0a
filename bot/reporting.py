"""Reports, charts, exports and public statistics as people read them: Telegram text, Markdown,
JSON, CSV, XLSX and PNG. Used by the /report, /export and /stats commands and by the CLI."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import IO, Any

from babel.dates import format_skeleton

from bot.config import Settings
from bot.db import Database
from bot.domain import access
from bot.domain.citizen_figures import CitizenFigures
from bot.domain.errors import DomainError
from bot.domain.reports import Period, Report, ReportService, parse_period
from bot.domain.rules import OUTCOME_LABELS, SOURCES
from bot.domain.units import UnitService
from bot.i18n import N_, _, current_locale, label, ngettext, use_locale
from bot.inputs import plain_text
from bot.xlsx import XlsxStream, looks_like_formula


def period_name(period: Period) -> str:
    """The period in the reader's language: "April 2026" / "មេសា 2026", "Q2 2026", "2026"."""
    first = period.start.date()
    if period.kind == "month":
        return format_skeleton("yMMMM", first, locale=current_locale())
    if period.kind == "quarter":
        return format_skeleton("yQQQ", first, locale=current_locale())
    return str(first.year)


def month_name(key: str) -> str:
    """A month of the public figures ("2026-04") in the reader's language."""
    year, month = key.split("-")
    return format_skeleton("yMMMM", date(int(year), int(month), 1), locale=current_locale())


def cohort_sentence(report: Report) -> list[str]:
    """The ministry's sentence for each carried-over intake year."""
    out = []
    for c in report.cohorts:
        text = _("Of the {n} cases carried over from {year}, {resolved} have been resolved and "
                 "{open} are still being addressed.").format(
            n=c.open_at_start, year=c.year, resolved=c.resolved_since, open=c.still_open)
        if c.merged_since:
            text += " " + ngettext("{n} was merged as a duplicate.", "{n} were merged as duplicates.",
                                   c.merged_since).format(n=c.merged_since)
        out.append(text)
    return out


def render_report(report: Report, *, html: bool = True) -> str:
    def b(text: str) -> str:
        return f"<b>{text}</b>" if html else text

    def esc(text: str) -> str:
        return escape(text) if html else text

    name = period_name(report.period)
    closed_total = sum(report.closed.values())
    lines = [
        b(_("Report for {period}").format(period=name)),
        _("Of the {received} requests received in {period}, {resolved} have been resolved and "
          "{open} are still in progress.").format(
            received=report.received, period=name, resolved=report.intake_resolved,
            open=report.intake_open),
        *cohort_sentence(report),
        "",
        _("Received: {n}").format(n=report.received),
        _("Resolved: {n}").format(n=report.resolved),
        _("Closed: {n}").format(n=closed_total) + "".join(
            f" · {label(OUTCOME_LABELS, k)}: {v}" for k, v in sorted(report.closed.items())),
        _("Awaiting verification at the end: {n}").format(n=report.awaiting_verification_at_end),
        _("Still in progress at the end: {n}").format(n=report.in_progress_at_end),
        _("Overdue at the end: {n}").format(n=report.overdue_at_end),
        _("Reopened: {n}").format(n=report.reopened),
        _("Returned (not ours, declined): {n}").format(n=report.returned),
        _("Bouncing at the end: {n}").format(n=report.bouncing),
        _("Merged as duplicates: {n}").format(n=report.merged),
    ]
    if report.median_days_to_close is not None:
        lines.append(_("Days to close: median {median}, 90th percentile {p90}").format(
            median=report.median_days_to_close, p90=report.p90_days_to_close))
    if report.citizens is not None:
        lines += citizen_lines(report.citizens)
    if report.forwarded:
        lines.append(_("Forwarded to other institutions:"))
        for institution, (sent, acked) in sorted(report.forwarded.items()):
            lines.append("  • " + _("{name}: {sent} forwarded, {acked} acknowledged").format(
                name=esc(institution), sent=sent, acked=acked))
    return "\n".join(lines)


def citizen_lines(figures: CitizenFigures) -> list[str]:
    """Cases by channel, how the confirmed ones were confirmed, withdrawals, abusive requests."""
    def by_source(counts: dict[str, int]) -> str:
        return " · ".join(f"{label(SOURCES, k, 'other')} {v}" for k, v in sorted(counts.items())) or "0"

    share = figures.share_by_citizen
    return [
        _("Received by channel: {counts}").format(counts=by_source(figures.by_source)),
        _("Confirmed: {n}; by the citizens themselves {citizen} ({share}), by phone {phone}").format(
            n=figures.confirmed, citizen=figures.confirmed_by_citizen, phone=figures.confirmed_by_phone,
            share="—" if share is None else f"{round(share * 100)}%"),
        _("Withdrawn by citizens: {n}").format(n=figures.withdrawn),
        _("Requests marked abusive: {n}").format(n=sum(figures.abusive.values())) + (
            f" ({by_source(figures.abusive)})" if figures.abusive else ""),
    ]


def public_citizen_lines(shown: dict[str, Any]) -> list[str]:
    """The public view of ``citizen_figures.public`` (small counts already hidden), plain text."""
    def rows(items: list[dict[str, object]], column: str) -> str:
        return " · ".join(f"{label(SOURCES, str(r['source']), 'other')} {r[column]}" for r in items) or "0"

    share = shown["share_by_citizen"]
    return [
        _("Cases by channel: {counts}").format(counts=rows(shown["by_source"], "cases")),
        _("Confirmed: {n}; confirmed by the citizens themselves: {share}").format(
            n=shown["confirmed"], share="—" if share is None else f"{round(float(share) * 100)}%"),
        _("Withdrawn by citizens: {n}").format(n=shown["withdrawn"]),
        _("Requests marked abusive: {counts}").format(counts=rows(shown["abusive"], "requests")),
    ]


def fairness_lines(stats: dict[str, list[dict[str, object]]], period: Period | None, *,
                   html: bool = True) -> list[str]:
    """The rights group's figures, per province and per category: median days to close, share
    overdue, closes out of order; for a period (``ReportService.fairness``) or all time."""
    if period is not None:
        title = _("Fairness in {period}, per province and per category (the cases open at some "
                  "time in it; overdue: at its end; closes: in it):").format(period=period_name(period))
    else:
        title = _("Fairness, all time, per province and per category (overdue: now):")
    lines = [title]
    for dimension in ("province", "category"):
        for row in stats.get(dimension, []):
            name = str(row[dimension])
            ooo = str(row.get("out_of_order_closes", 0))  # may be "<5", which HTML writes "&lt;5"
            lines.append("  • " + (escape(name) if html else name) + ": " + _(
                "median {median} days to close, {overdue} overdue, {ooo} closed out of order").format(
                median="—" if row["median_days_to_close"] is None else row["median_days_to_close"],
                overdue="—" if row.get("share_overdue") is None
                else f"{round(float(str(row['share_overdue'])) * 100)}%",
                ooo=escape(ooo) if html else ooo))
    return lines


DIMENSION_TITLES = {"month": N_("By month"), "province": N_("By province"), "category": N_("By category")}


def row_name(dimension: str, row: dict[str, object]) -> str:
    """A row's name as read: a month in the reader's language, a province or category as it is."""
    key = str(row[dimension])
    return month_name(key) if dimension == "month" else key


# --- charts ----------------------------------------------------------------------------------------

KHMER_FONTS = ("Khmer OS System", "Khmer OS", "Noto Sans Khmer", "Noto Serif Khmer", "Hanuman")
AGE_LIMITS = (7, 28, 91, 365, 10**9)  # days: the buckets of the age chart
AGE_LABELS = {7: N_("< 1 week"), 28: N_("1–4 weeks"), 91: N_("1–3 months"), 365: N_("3–12 months"),
              10**9: N_("over a year")}


def _khmer_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in KHMER_FONTS if name in installed), None)


def charts(report: Report) -> list[tuple[str, bytes]]:
    """PNG charts: received and closed per week, and the age of the cases not closed at the end.
    In Khmer when a Khmer font is installed (the Docker image has fonts-khmeros), else in
    English rather than as empty boxes."""
    import matplotlib

    matplotlib.use("Agg")
    font = _khmer_font() if current_locale() == "km" else None
    if current_locale() == "km" and font is None:
        with use_locale("en"):
            return _draw(report, None)
    return _draw(report, font)


def partial_weeks(report: Report) -> list[bool]:
    """For each week of ``report.weekly``: whether part of it lies outside the period (a week
    that starts before its first day or ends after its last)."""
    first, last = report.first_day, report.last_day
    return [first is not None and last is not None and (w < first or w + timedelta(days=6) > last)
            for w, _r, _c in report.weekly]


def _draw(report: Report, font: str | None) -> list[tuple[str, bytes]]:
    from matplotlib import pyplot as plt

    # Khmer script needs a larger size than Latin to be read on a phone (the chart is shrunk
    # to the screen's width): every text at least 12 pt on a 1200-pixel-wide image.
    size = 13 if font else 12
    name = period_name(report.period)
    out = []
    with plt.rc_context({"font.size": size, "axes.titlesize": size + 2, "axes.labelsize": size,
                         "xtick.labelsize": size, "ytick.labelsize": size, "legend.fontsize": size,
                         "font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"]}):
        partial = partial_weeks(report)
        weeks = [format_skeleton("MMMd", w, locale=current_locale()) + (" *" if p else "")
                 for (w, _r, _c), p in zip(report.weekly, partial, strict=True)]
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=150)
        _pairs(ax, [r for _w, r, _c in report.weekly], [c for _w, _r, c in report.weekly],
               (_("received"), _("closed")), ("#4f81bd", "#9bbb59"), ["//" if p else "" for p in partial],
               size)
        step = max(1, -(-len(weeks) // 12))  # at most 12 tick labels
        ax.set_xticks(list(range(len(weeks)))[::step], weeks[::step], rotation=0 if len(weeks) <= 6 else 45,
                      ha="center" if len(weeks) <= 6 else "right")
        _frame(ax, _("Received and closed per week, {period}").format(period=name),
               _("week beginning"), size)
        if any(partial):
            fig.text(0.01, 0.01, _("* partial week: only its days in {period} are counted").format(
                period=name), fontsize=size - 2, color="#444444")
        fig.tight_layout(rect=(0, 0.04 if any(partial) else 0, 1, 1))
        out.append(("received-closed.png", _png(fig)))
        plt.close(fig)

        in_progress, awaiting = [0] * len(AGE_LIMITS), [0] * len(AGE_LIMITS)
        for ages, counts in ((report.open_ages, in_progress), (report.awaiting_ages, awaiting)):
            for age in ages:
                counts[next(i for i, limit in enumerate(AGE_LIMITS) if age < limit)] += 1
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=150)
        _pairs(ax, in_progress, awaiting, (_("in progress"), _("awaiting verification")),
               ("#c0504d", "#f2c314"), [""] * len(AGE_LIMITS), size)
        ax.set_xticks(list(range(len(AGE_LIMITS))), [label(AGE_LABELS, limit) for limit in AGE_LIMITS])
        _frame(ax, _("Cases not closed at the end of {period}, by age").format(period=name),
               _("time since the request was received"), size)
        fig.tight_layout()
        out.append(("open-ages.png", _png(fig)))
        plt.close(fig)
    return out


def _pairs(ax: Any, first: list[int], second: list[int], names: tuple[str, str], colors: tuple[str, str],
           hatch: list[str], size: int) -> None:
    """Two bars per tick, each with its number on it: a small bar stays readable beside one that
    dwarfs it."""
    x = range(len(first))
    for offset, values, name, color in ((-0.2, first, names[0], colors[0]),
                                        (0.2, second, names[1], colors[1])):
        bars = ax.bar([i + offset for i in x], values, width=0.4, label=name, color=color, hatch=hatch,
                      edgecolor="white")
        if len(first) <= 14:  # while the numbers fit
            ax.bar_label(bars, padding=2, fontsize=size - 1)
    ax.set_ylim(0, max([*first, *second, 1]) * 1.15)


def _frame(ax: Any, title: str, xlabel: str, size: int) -> None:
    """Title, legend under it (clear of the bars), the axes' names; the y axis named across,
    above it (a rotated Khmer word is hard to read)."""
    ax.set_title(title, pad=size * 2.6)
    ax.legend(loc="lower right", bbox_to_anchor=(1, 1.0), ncols=2, frameon=False, borderaxespad=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_("cases"), rotation=0, ha="right", va="bottom")
    ax.yaxis.set_label_coords(-0.01, 1.0)
    ax.spines[["top", "right"]].set_visible(False)


def _png(fig: object) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # type: ignore[attr-defined]
    return buf.getvalue()


def spreadsheet_text(value: str) -> str:
    """Text as safe to open from a CSV file in a spreadsheet app: text that would start with
    ``= + - @``, a tab or a carriage return gets a leading ``'`` so that it is shown, never run as
    a formula (OWASP "CSV injection"), also when control characters come first. (An XLSX cell
    holds text as text: there such text is marked with a quote prefix instead, which is not
    shown; see bot/xlsx.py.)"""
    return "'" + value if looks_like_formula(value) else value


def spreadsheet_row(row: Sequence[object]) -> list[object]:
    """A CSV row with its text made safe (``spreadsheet_text``); numbers as they are, dates and
    times as ``YYYY-MM-DD HH:MM`` (local, like the XLSX cells)."""
    return [spreadsheet_text(v) if isinstance(v, str)
            else v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime)
            else v for v in row]


class TableWriter:
    """Sheets written one row at a time: CSV (one file per sheet: the first at ``path``, the
    others beside it) or XLSX (one file, a sheet each: bot/xlsx.py). No cap, and nothing held but
    the rows being written. Citizens' text never becomes a formula (CSV: a leading ``'``; XLSX: a
    text cell with a quote prefix, no visible apostrophe), and control characters never break an
    XLSX. Dates and times are local: date cells in XLSX."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.xlsx = path.suffix.lower() == ".xlsx"
        self.written: list[Path] = []
        self._file: IO[str] | None = None
        self._workbook: XlsxStream | None = XlsxStream(path) if self.xlsx else None

    def sheet(self, title: str, header: list[str]) -> Callable[[Sequence[object]], None]:
        """Start the next sheet with its header; returns the function that appends a row."""
        if self._workbook is not None:
            return self._workbook.sheet(title, header)
        self._close_file()
        target = self.path if not self.written else self.path.with_name(
            f"{self.path.stem}-{title}{self.path.suffix}")
        self._file = target.open("w", newline="", encoding="utf-8-sig")
        self.written.append(target)
        put = csv.writer(self._file).writerow

        def append(row: Sequence[object]) -> None:
            put(spreadsheet_row(row))

        append(header)
        return append

    def close(self) -> list[Path]:
        """Finish the file(s); the paths written."""
        if self._workbook is not None:
            self._workbook.close()
            self._workbook = None
            self.written = [self.path]
        self._close_file()
        return self.written

    def abort(self) -> None:
        """Stop on an error: no XLSX is left (a half-written one would be corrupt)."""
        if self._workbook is not None:
            self._workbook.abort()
            self._workbook = None
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


Sheet = tuple[str, list[str], Iterable[Sequence[object]]]  # title, header, rows


def write_table(path: Path, sheets: Sequence[Sheet]) -> list[Path]:
    """CSV (one file per sheet: the first at ``path``, the others beside it) or XLSX (one file,
    a sheet each), written row by row: no cap, little memory."""
    out = TableWriter(path)
    try:
        for title, header, rows in sheets:
            append = out.sheet(title, header)
            for row in rows:
                append(row)
    except BaseException:
        out.abort()
        raise
    return out.close()


def stats_legend() -> str:
    """What the public figures hold and how small counts are hidden (bot/domain/disclosure.py)."""
    return _("All cases since the start, by the month they were received, by province and by "
             "category; \"in progress\", \"forwarded\" and \"overdue\" as of now. No personal data. "
             "Counts under 5 are shown as <5, and as many other counts as it takes are hidden too (<5, "
             "or x) so that none can be worked out from the totals; provinces and categories with "
             "fewer than 10 cases are pooled, with the smallest others when one would stand alone.")


def stats_markdown(stats: dict[str, list[dict[str, object]]]) -> str:
    lines = ["# " + _("Public figures, all time"), "", stats_legend(), ""]
    for dimension, rows in stats.items():
        if not rows:
            continue
        lines.append("## " + label(DIMENSION_TITLES, dimension))
        header = list(rows[0].keys())
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + " --- |" * len(header))
        for row in rows:
            cells = [row_name(dimension, row) if h == dimension else "—" if row[h] is None else str(row[h])
                     for h in header]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


# --- the command line ----------------------------------------------------------------------------

async def _open(settings: Settings) -> tuple[Database, ReportService]:
    db = await Database.open(settings.database)
    units = UnitService(db, settings)
    await units.sync_from_config()
    return db, ReportService(db, units, settings.tz)


async def cli_report(settings: Settings, args: argparse.Namespace) -> int:
    try:
        period = parse_period(args.period, settings.tz)
    except DomainError as exc:
        print(f"error: {plain_text(exc.user_message())}", file=sys.stderr)
        return 2
    db, reports = await _open(settings)
    try:
        with use_locale(settings.default_language):
            now = datetime.now(UTC)
            report = await reports.report(period, None, now, fairness=period.kind == "month")
            print(render_report(report, html=False))
            if report.fairness is not None:
                print("\n".join(fairness_lines(report.fairness, period, html=False)))
            if args.charts:
                folder = Path(args.charts)
                folder.mkdir(parents=True, exist_ok=True)
                for name, png in charts(report):
                    (folder / name).write_bytes(png)
                    print(f"chart: {folder / name}")
    finally:
        await db.close()
    return 0


async def cli_export(settings: Settings, args: argparse.Namespace) -> int:
    try:
        period = parse_period(args.period, settings.tz) if args.period else None
    except DomainError as exc:
        print(f"error: {plain_text(exc.user_message())}", file=sys.stderr)
        return 2
    path = Path(args.output)
    if args.format == "xlsx" and path.suffix.lower() != ".xlsx":
        path = path.with_suffix(".xlsx")
    personal = not args.no_personal_data
    db, reports = await _open(settings)
    shown: list[int] = []
    try:
        out, counts = await stream_export(reports, path, period, None, personal, now=datetime.now(UTC),
                                          shown=shown)
        await access.record(db, access.CLI, shown, access.VIA_EXPORT, datetime.now(UTC))
    finally:
        await db.close()
    for file in out.close():
        print(f"wrote {file}")
    print(f"{counts['cases']} cases, {counts['events']} events")
    return 0


async def stream_export(reports: ReportService, path: Path, period: Period | None,
                        scope: set[int] | None, personal: bool, *, now: datetime,
                        shown: list[int] | None = None) -> tuple[TableWriter, dict[str, int]]:
    """The cases sheet and the events sheet, written as read, a batch at a time: exports of any
    size in little memory. With a period, the cases its report counts (``export_cases``) and
    their events. Returns the writer, still to be closed (``close`` saves an XLSX), and the rows
    written per sheet. On an error nothing is saved. With personal data, ``shown`` gets the
    number of each case written (for the access log: bot/domain/access.py)."""
    counts = {"cases": 0, "events": 0}
    exported = array("q")  # the numbers of the cases written, ascending: 8 bytes a case
    out = TableWriter(path)
    try:
        case_header, event_header = reports.export_headers(personal, period)
        append = out.sheet("cases", case_header)
        cases = reports.export_cases(period, scope, personal, now)
        async with aclosing(cases):  # on an error, its cursors are closed before the database
            async for row in cases:
                append(row)
                counts["cases"] += 1
                number = int(str(row[0]))
                if period is not None:
                    exported.append(number)
                if personal and shown is not None:
                    shown.append(number)
        append = out.sheet("events", event_header)
        events = reports.export_events(exported if period is not None else None, scope, personal)
        async with aclosing(events):
            async for row in events:
                append(row)
                counts["events"] += 1
    except BaseException:
        out.abort()
        raise
    return out, counts


async def cli_stats(settings: Settings, args: argparse.Namespace) -> int:
    db, reports = await _open(settings)
    try:
        with use_locale(settings.default_language):
            stats = await reports.public(datetime.now(UTC))
            print(json.dumps(stats, ensure_ascii=False, indent=2) if args.format == "json"
                  else stats_markdown(stats))
    finally:
        await db.close()
    return 0


def period_label(period: Period | None) -> str:
    return period.label if period else _("everything")
