"""Reports, charts, exports and public statistics as people read them: Telegram text, Markdown,
JSON, CSV, XLSX and PNG. Used by the /report, /export and /stats commands and by the CLI."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from babel.dates import format_date
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from bot.config import Settings
from bot.db import Database
from bot.domain import access
from bot.domain.errors import DomainError
from bot.domain.reports import Period, Report, ReportService, parse_period
from bot.domain.rules import OUTCOME_LABELS
from bot.domain.units import UnitService
from bot.i18n import _, current_locale, label, ngettext, use_locale
from bot.inputs import plain_text


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
        from html import escape

        return escape(text) if html else text

    closed_total = sum(report.closed.values())
    lines = [
        b(_("Report for {period}").format(period=report.period.label)),
        _("Of the {received} requests received in {period}, {resolved} have been resolved and "
          "{open} are still in progress.").format(
            received=report.received, period=report.period.label, resolved=report.intake_resolved,
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
        _("Bouncing now: {n}").format(n=report.bouncing),
        _("Merged as duplicates: {n}").format(n=report.merged),
    ]
    if report.median_days_to_close is not None:
        lines.append(_("Days to close: median {median}, 90th percentile {p90}").format(
            median=report.median_days_to_close, p90=report.p90_days_to_close))
    if report.forwarded:
        lines.append(_("Forwarded to other institutions:"))
        for name, (sent, acked) in sorted(report.forwarded.items()):
            lines.append("  • " + _("{name}: {sent} forwarded, {acked} acknowledged").format(
                name=esc(name), sent=sent, acked=acked))
    return "\n".join(lines)


def fairness_lines(stats: dict[str, list[dict[str, object]]], *, html: bool = True) -> list[str]:
    """The rights group's figures, per province and per category: median days to close, share
    overdue, closes out of order."""
    from html import escape

    lines = [_("Fairness, per province and per category:")]
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


KHMER_FONTS = ("Khmer OS", "Khmer OS System", "Noto Sans Khmer", "Noto Serif Khmer", "Hanuman")


def _khmer_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in KHMER_FONTS if name in installed), None)


def charts(report: Report) -> list[tuple[str, bytes]]:
    """PNG charts: received vs closed per week, and the age of open cases at the end. In Khmer
    when a Khmer font is installed (the Docker image has fonts-khmeros), else in English rather
    than as empty boxes."""
    import matplotlib

    matplotlib.use("Agg")
    font = _khmer_font() if current_locale() == "km" else None
    if current_locale() == "km" and font is None:
        with use_locale("en"):
            return _draw(report, None)
    return _draw(report, font)


def _draw(report: Report, font: str | None) -> list[tuple[str, bytes]]:
    from matplotlib import pyplot as plt

    if font:
        plt.rcParams["font.family"] = [font, "DejaVu Sans"]
    out = []
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    weeks = [format_date(w, "d MMM", locale=current_locale()) for w, _r, _c in report.weekly]
    x = range(len(weeks))
    ax.bar([i - 0.2 for i in x], [r for _w, r, _c in report.weekly], width=0.4, label=_("received"))
    ax.bar([i + 0.2 for i in x], [c for _w, _r, c in report.weekly], width=0.4, label=_("closed"))
    ax.set_xticks(list(x), weeks, rotation=45, fontsize=8)
    ax.set_title(_("Received and closed per week, {period}").format(period=report.period.label))
    ax.legend()
    fig.tight_layout()
    out.append(("received-closed.png", _png(fig)))
    plt.close(fig)

    buckets = [(_("< 1 week"), 7), (_("1–4 weeks"), 28), (_("1–3 months"), 91),
               (_("3–12 months"), 365), (_("over a year"), 10**9)]
    counts = [0] * len(buckets)
    for age in report.open_ages:
        counts[next(i for i, (_label, limit) in enumerate(buckets) if age < limit)] += 1
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.bar([label for label, _limit in buckets], counts, color="#c0504d")
    ax.set_title(_("Age of open cases at the end of {period}").format(period=report.period.label))
    fig.tight_layout()
    out.append(("open-ages.png", _png(fig)))
    plt.close(fig)
    return out


def _png(fig: object) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # type: ignore[attr-defined]
    return buf.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheet apps may run as a formula
CONTROL = "".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r")  # what XLSX cannot hold


def spreadsheet_text(value: str, *, xlsx: bool) -> str:
    """Text as safe to open in a spreadsheet app. Text that would start with ``= + - @``, a tab or
    a carriage return gets a leading ``'`` so that it is shown, never run as a formula (OWASP
    "CSV injection"), also when control characters come first. For XLSX, control characters
    (which the format cannot hold) are dropped; line breaks and tabs are kept."""
    if xlsx:
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if value.lstrip(CONTROL).startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_row(row: Sequence[object], *, xlsx: bool) -> list[object]:
    """A row with its text made safe (``spreadsheet_text``); numbers and dates as they are."""
    return [spreadsheet_text(v, xlsx=xlsx) if isinstance(v, str) else v for v in row]


class TableWriter:
    """Sheets written one row at a time: CSV (one file per sheet: the first at ``path``, the
    others beside it) or XLSX (one file, a sheet each, openpyxl's write-only mode). No cap, and
    nothing held but the row being written. Every text cell goes through ``spreadsheet_text``:
    citizens' text never becomes a formula, and control characters never break an XLSX."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.xlsx = path.suffix.lower() == ".xlsx"
        self.written: list[Path] = []
        self._file: IO[str] | None = None
        self._workbook: Any = None
        if self.xlsx:
            from openpyxl import Workbook

            self._workbook = Workbook(write_only=True)

    def sheet(self, title: str, header: list[str]) -> Callable[[Sequence[object]], None]:
        """Start the next sheet with its header; returns the function that appends a row."""
        put: Callable[[Sequence[object]], object]
        if self._workbook is not None:
            ws = self._workbook.create_sheet(title)
            put = ws.append
        else:
            self._close_file()
            target = self.path if not self.written else self.path.with_name(
                f"{self.path.stem}-{title}{self.path.suffix}")
            self._file = target.open("w", newline="", encoding="utf-8-sig")
            self.written.append(target)
            put = csv.writer(self._file).writerow
        xlsx = self.xlsx

        def append(row: Sequence[object]) -> None:
            put(spreadsheet_row(row, xlsx=xlsx))

        append(header)
        return append

    def close(self) -> list[Path]:
        """Finish the file(s); the paths written."""
        if self._workbook is not None:
            self._workbook.save(self.path)
            self._workbook = None
            self.written = [self.path]
        self._close_file()
        return self.written

    def abort(self) -> None:
        """Stop on an error: no XLSX is saved (a half-written sheet would be corrupt)."""
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


def stats_markdown(stats: dict[str, list[dict[str, object]]]) -> str:
    lines = ["# " + _("Public figures"), "",
             _("No personal data. Counts under 5 are shown as <5; units with fewer than 10 cases "
               "are grouped."), ""]
    for dimension, rows in stats.items():
        if not rows:
            continue
        lines.append(f"## {dimension}")
        header = list(rows[0].keys())
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + " --- |" * len(header))
        for row in rows:
            lines.append("| " + " | ".join("—" if row[h] is None else str(row[h]) for h in header) + " |")
        lines.append("")
    return "\n".join(lines)


# --- the command line ----------------------------------------------------------------------------

async def _open(settings: Settings) -> tuple[Database, ReportService]:
    db = await Database.open(settings.database_path)
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
            report = await reports.report(period, None, datetime.now(UTC))
            print(render_report(report, html=False))
            if period.kind == "month":
                print("\n".join(fairness_lines(await reports.public(datetime.now(UTC)), html=False)))
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
        out, counts = await stream_export(reports, path, period, None, personal, shown=shown)
        await access.record(db, access.CLI, shown, access.VIA_EXPORT, datetime.now(UTC))
    finally:
        await db.close()
    for file in out.close():
        print(f"wrote {file}")
    print(f"{counts['cases']} cases, {counts['events']} events")
    return 0


async def stream_export(reports: ReportService, path: Path, period: Period | None,
                        scope: set[int] | None, personal: bool, *, shown: list[int] | None = None,
                        ) -> tuple[TableWriter, dict[str, int]]:
    """The cases sheet and the events sheet, written as read, a batch at a time: exports of any
    size in little memory. Returns the writer, still to be closed (``close`` saves an XLSX), and
    the rows written per sheet. On an error nothing is saved. With personal data, ``shown``
    gets the number of each case written (for the access log: bot/domain/access.py)."""
    counts = {"cases": 0, "events": 0}
    out = TableWriter(path)
    try:
        case_header, event_header = reports.export_headers(personal)
        for title, header, rows in (("cases", case_header, reports.export_cases(period, scope, personal)),
                                    ("events", event_header, reports.export_events(period, scope, personal))):
            append = out.sheet(title, header)
            async with aclosing(rows):  # on an error, its cursor is closed before the database
                async for row in rows:
                    append(row)
                    counts[title] += 1
                    if personal and shown is not None and title == "cases":
                        shown.append(int(str(row[0])))
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
