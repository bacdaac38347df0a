"""/report, /export and /stats."""

from __future__ import annotations

import asyncio
import io
import tempfile
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import Any

from telegram import InputFile, Update
from telegram.ext import CommandHandler

from bot.domain import access
from bot.domain.citizen_figures import citizen_figures
from bot.domain.citizen_figures import public as public_citizens
from bot.domain.errors import DomainError, Forbidden, Invalid
from bot.domain.reports import Period, ReportService, parse_period
from bot.domain.rules import GLOBAL_ROLES, Role
from bot.handlers.common import Context, UsageError, access_log, actor, now, refuse, reply, svc
from bot.i18n import N_, _, label
from bot.reporting import (
    DIMENSION_TITLES,
    charts,
    fairness_lines,
    period_name,
    public_citizen_lines,
    render_report,
    row_name,
    stats_legend,
    stream_export,
)

REPORT_USAGE = N_("/report [YYYY-MM | YYYY-Qn | YYYY]")
EXPORT_USAGE = N_("/export [YYYY-MM | YYYY-Qn | YYYY] [nopd]")


def _reports(context: Context) -> ReportService:
    services = svc(context)
    return ReportService(services.db, services.units, services.settings.tz)


async def _scope(context: Context, tg_id: int) -> set[int] | None:
    """Everything for the working group; a supervisor's units; nobody else."""
    services = svc(context)
    grants = await services.people.grants(tg_id)
    if any(g.role in GLOBAL_ROLES for g in grants):
        return None
    scope: set[int] = set()
    for g in grants:
        if g.role is Role.SUPERVISOR and g.unit_id is not None:
            scope |= services.units.subtree(g.unit_id)
    if not scope:
        raise Forbidden()
    return scope


def _period(text: str, context: Context, usage: str) -> Period:
    """The period a command names; one that is not (or out of range) gets the usage line."""
    try:
        return parse_period(text, svc(context).settings.tz)
    except Invalid as exc:
        raise UsageError(exc.user_message(), usage) from None


def _last_month(context: Context) -> Period:
    tz = svc(context).settings.tz
    first = now(context).astimezone(tz).date().replace(day=1)
    previous = first - timedelta(days=1)
    return parse_period(previous.strftime("%Y-%m"), tz)


async def report(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        if len(args) > 1:
            raise UsageError(_("Give at most one period."), REPORT_USAGE)
        period = _period(args[0], context, REPORT_USAGE) if args else _last_month(context)
        scope = await _scope(context, actor(update).tg_id)
    except DomainError as exc:
        await refuse(update, exc)
        return
    reports = _reports(context)
    result = await reports.report(period, scope, now(context), fairness=period.kind == "month")
    text = render_report(result)
    if result.fairness is not None:
        text += "\n\n" + "\n".join(fairness_lines(result.fairness, period))
    await reply(update, text)
    chat = update.effective_chat
    if period.kind == "month" and chat is not None:
        for name, png in charts(result):
            await chat.send_photo(InputFile(io.BytesIO(png), filename=name), caption=period_name(period))


async def export(update: Update, context: Context) -> None:
    args = list(context.args or [])
    who = actor(update)
    try:
        leave_out = "nopd" in args
        args = [a for a in args if a != "nopd"]
        if len(args) > 1:
            raise UsageError(_("Give at most one period."), EXPORT_USAGE)
        period = _period(args[0], context, EXPORT_USAGE) if args else None
        scope = await _scope(context, who.tg_id)
    except DomainError as exc:
        await refuse(update, exc)
        return
    # Personal data only for the working group, and only where nobody else reads along.
    personal = (not leave_out and scope is None and update.effective_chat is not None
                and update.effective_chat.type == "private")
    label = period.label if period else "all"
    chat = update.effective_chat
    assert chat is not None
    # Streamed to a temporary file a batch at a time (any size in little memory), sent, deleted.
    with tempfile.TemporaryDirectory(prefix="casebot-export-") as tmp:
        path = Path(tmp) / f"casebot-{label}.xlsx"
        shown: list[int] = []
        out, counts = await stream_export(_reports(context), path, period, scope, personal,
                                          now=now(context), shown=shown)
        await asyncio.to_thread(out.close)  # saving a large workbook takes a while: not on the loop
        # Each case with personal data in the file: recorded before the file is handed over.
        services = svc(context)
        await access.record(services.db, await access_log(services).person(who), shown,
                            access.VIA_EXPORT, now(context))
        with path.open("rb") as document:
            await chat.send_document(
                document, filename=path.name,
                caption=_("{cases} cases, {events} events; personal data: {pd}").format(
                    cases=counts["cases"], events=counts["events"],
                    pd=_("included") if personal else _("left out")))


async def stats(update: Update, context: Context) -> None:
    """The public view: anyone may ask, nothing in it identifies a citizen."""
    figures = await _reports(context).public(now(context))
    lines = ["<b>" + _("Public figures, all time") + "</b>", escape(stats_legend())]
    for dimension, rows in figures.items():
        lines.append("")
        lines.append("<b>" + label(DIMENSION_TITLES, dimension) + "</b>")
        for row in rows:
            line = escape(row_name(dimension, row)) + ": " + _(
                "received {received} · closed {closed} · in progress {in_progress} · "
                "forwarded {forwarded}").format(**{k: escape(str(row[k])) for k in (  # "<5"
                    "received", "closed", "in_progress", "forwarded")})
            if row["median_days_to_close"] is not None:
                line += " · " + _("median {d} days to close").format(d=row["median_days_to_close"])
            if row.get("share_overdue") is not None:
                line += " · " + _("{p}% overdue").format(p=round(float(str(row["share_overdue"])) * 100))
            if row.get("out_of_order_closes") not in (None, 0):
                line += " · " + _("{n} closed out of order").format(n=escape(str(row["out_of_order_closes"])))
            lines.append(line)
    services = svc(context)
    citizens = await citizen_figures(services.db, None, now(context) + timedelta(microseconds=1))
    lines += ["", "<b>" + _("Citizens in the loop") + "</b>",
              *(escape(line) for line in public_citizen_lines(public_citizens(citizens)))]
    await reply(update, "\n".join(lines))


def handlers() -> list[Any]:
    return [
        CommandHandler("report", report),
        CommandHandler("export", export),
        CommandHandler("stats", stats),
    ]
