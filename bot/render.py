"""Turning cases into Telegram text and buttons. Every user-supplied string is HTML-escaped here."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain.model import CaseView, Event, actor_shown, days_between, days_label, files_label
from bot.domain.outbox import Buttons
from bot.domain.rules import (
    ACTION_LABELS,
    CHANNEL_LABELS,
    OUTCOME_LABELS,
    PRIORITIES,
    SOURCES,
    STATUS_LABELS,
    UNFINISHED_STATUSES,
    Action,
    Status,
)
from bot.i18n import N_, _, current_locale, label

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
DESCRIPTION_ON_CARD = 600


DUE_LABELS: dict[Status, str] = {
    Status.FORWARDED: N_("Acknowledge by {when}"),
    Status.RESOLVED: N_("Verify by {when}"),
}


def when(dt: datetime | None, tz: ZoneInfo, *, with_time: bool = True) -> str:
    if dt is None:
        return "—"
    pattern = "d MMM y, HH:mm" if with_time else "d MMM y"
    return format_datetime(dt, pattern, tzinfo=tz, locale=current_locale())


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_label(status: Status) -> str:
    return label(STATUS_LABELS, status)


# Callback data: ids only. c:<case>:<version>:<action code>
CARD_ACTIONS: dict[str, Action] = {
    "acc": Action.ACCEPT, "inf": Action.NEED_INFO, "ret": Action.RETURN, "res": Action.RESOLVE,
    "ack": Action.ACKNOWLEDGE, "dec": Action.DECLINE,
    "cfm": Action.VERIFY, "unr": Action.VERIFY, "dis": Action.REOPEN, "reo": Action.REOPEN,
    "snz": Action.SNOOZE, "hlp": Action.HELP, "rsm": Action.RESUME,
}
DIRECT_CODES = frozenset({"acc", "cfm", "unr", "rsm"})  # done at once; the others ask for words


def card_action_data(case_id: int, version: int, code: str) -> str:
    return f"c:{case_id}:{version}:{code}"


def card_buttons(case: CaseView) -> Buttons:
    """The unit's buttons for the case's current status (rights are checked on press)."""
    v, n = case.version, case.id
    rows: Buttons = []
    if case.status is Status.ASSIGNED:
        rows.append([(_("✅ Accept"), card_action_data(n, v, "acc")),
                     (_("❓ Need info"), card_action_data(n, v, "inf"))])
    elif case.status is Status.IN_PROGRESS:
        rows.append([(_("❓ Need info"), card_action_data(n, v, "inf"))])
    if case.status in (Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_INFO):
        rows.append([(_("↩️ Not ours"), card_action_data(n, v, "ret")),
                     (_("✔️ Resolved…"), card_action_data(n, v, "res"))])
    if case.status is Status.FORWARDED:
        rows.append([(_("📥 Acknowledge"), card_action_data(n, v, "ack"))])
    if case.status in (Status.FORWARDED, Status.ACKNOWLEDGED):
        rows.append([(_("↩️ Decline (not ours)"), card_action_data(n, v, "dec")),
                     (_("✔️ Resolved…"), card_action_data(n, v, "res"))])
    return rows


def keyboard(buttons: Buttons | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in buttons]
    )


def card_text(case: CaseView, tz: ZoneInfo, now: datetime, *, personal: bool) -> str:
    """The case card. Citizen name and contact only when ``personal``."""
    head = f"<b>#{case.id}</b> · {escape(case.category)}"
    if case.priority == "urgent":
        head += " · 🔴 " + label(PRIORITIES, "urgent")
    lines = [head, f"<b>{escape(case.summary)}</b>"]
    place = "📍 " + escape(case.place)
    if case.unit_name and case.unit_id != case.place_unit_id:  # not "Daun Penh → Daun Penh"
        place += " → " + _("assigned to {unit}").format(unit=escape(case.unit_name))
    lines.append(place)
    received = _("Received {when} ({days} ago) via {source}").format(
        when=when(case.received_at, tz, with_time=False),
        days=days_label(days_between(case.received_at, now)),
        source=label(SOURCES, case.source, "other"),
    )
    lines.append("🕓 " + received)
    if case.is_away:
        line = "📨 " + _("Forwarded via {channel}").format(
            channel=label(CHANNEL_LABELS, case.forward_channel or "telegram", "telegram"))
        if case.their_reference:
            line += " · " + _("their reference: {ref}").format(ref=escape(case.their_reference))
        lines.append(line)
    if case.due_at is not None and case.status in UNFINISHED_STATUSES:
        due = (label(DUE_LABELS, case.status) if case.status in DUE_LABELS else _("Due {when}")).format(
            when=when(case.due_at, tz, with_time=False))
        if case.is_overdue(now):
            due += " · ⚠️ " + _("overdue by {days}").format(
                days=days_label(max(1, days_between(case.due_at, now)))
            )
        lines.append("⏳ " + due)
    if case.erased_at is not None:
        lines.append("")
        lines.append("🗑 " + _("[erased] The citizen's personal data was erased on {when}.").format(
            when=when(case.erased_at, tz, with_time=False)))
    elif case.description:
        lines.append("")
        lines.append(escape(cut(case.description, DESCRIPTION_ON_CARD)))
    if personal and case.erased_at is None:
        citizen = escape(case.citizen_name)
        if case.citizen_contact:
            citizen += " · " + escape(case.citizen_contact)
        lines.append("")
        lines.append("👤 " + citizen)
    if case.n_attachments:
        lines.append("📎 " + _("{n} attachment(s) — /case {id} shows them").format(
            n=case.n_attachments, id=case.id))
    lines.append("")
    status = "<b>" + status_label(case.status) + "</b>"
    if case.outcome:
        status += " · " + label(OUTCOME_LABELS, case.outcome)
    if case.merged_into:
        status += f" → #{case.merged_into}"
    if case.reopen_count:
        status += " · " + _("reopened {n}×").format(n=case.reopen_count)
    if case.bouncing:
        status += " · ⚠️ " + _("bouncing")
    if case.assignee_name and case.status is not Status.NEW:
        status += " · " + _("handled by {who}").format(who=escape(case.assignee_name))
    lines.append(status)
    if case.last_action and case.last_at:
        action = ACTION_LABELS.get(Action(case.last_action)) if _known(case.last_action) else None
        lines.append(
            "<i>" + _("Last: {action} by {who}, {when}").format(
                action=_(action) if action else escape(case.last_action),
                who=escape(actor_shown(case.last_actor or "?")), when=when(case.last_at, tz),
            ) + "</i>"
        )
    return "\n".join(lines)


def _known(action: str) -> bool:
    return action in {a.value for a in Action}


def moved_card_text(case: CaseView) -> str:
    """What an earlier unit's card becomes once the case has left that unit: no personal data."""
    lines = [f"<b>#{case.id}</b> · {escape(case.summary)}"]
    if case.unit_name:
        lines.append(_("Moved to {unit}.").format(unit=escape(case.unit_name)))
    else:
        lines.append(_("Returned to the working group."))
    return "\n".join(lines)


def superseded_card_text(case: CaseView) -> str:
    """An older card of a case once a newer one is posted in the same chat (the case came back):
    no buttons, no personal data."""
    return f"<b>#{case.id}</b> · {escape(case.summary)}\n" + _(
        "A newer card of this case is further down.")


def list_line(case: CaseView, now: datetime) -> str:
    days = days_between(case.received_at, now)
    flag = "⚠️ " if case.is_overdue(now) else ""
    where = case.unit_name or _("queue")
    return (
        f"{flag}<b>#{case.id}</b> · {days_label(days)} · {escape(where)} · "
        f"{status_label(case.status)}\n    {escape(cut(case.summary, 80))}"
    )


def history_lines(events: list[Event], tz: ZoneInfo) -> list[str]:
    out = []
    for e in events:
        what = label(ACTION_LABELS, Action(e.action)) if _known(e.action) else escape(e.action)
        line = f"• {when(e.at, tz)} · {escape(actor_shown(e.actor_name, e.actor_id))} · {what}"
        if e.from_status and e.to_status and e.from_status != e.to_status:
            line += f" ({status_label(Status(e.from_status))} → {status_label(Status(e.to_status))})"
        extra = e.data.get("unit_name")
        if extra:
            line += " → " + escape(str(extra))
        if e.data.get("assignee"):
            line += " (" + escape(str(e.data["assignee"])) + ")"
        if e.data.get("channel") and e.data["channel"] != "telegram":
            line += " (" + label(CHANNEL_LABELS, e.data["channel"], "letter") + ")"
        if e.action == Action.FORWARD and files_label(e.data):
            line += " · " + files_label(e.data)
        if e.data.get("reference"):
            line += " · " + _("their reference: {ref}").format(ref=escape(str(e.data["reference"])))
        if e.data.get("outcome"):
            line += " · " + label(OUTCOME_LABELS, e.data["outcome"], "confirmed")
        if e.data.get("disputed"):
            line += " · " + _("the citizen disputes")
        if e.data.get("into"):
            line += f" → #{e.data['into']}"
        if e.data.get("merged_from"):
            line += " · " + _("#{n} merged into this case").format(n=e.data["merged_from"])
        if e.data.get("bouncing"):
            line += " · ⚠️ " + _("bouncing")
        if e.note:
            line += ": " + escape(e.note)
        elif e.erased:
            line += ": " + _("[erased]")
        out.append(line)
    return out


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split on line boundaries so that HTML tags (kept within a line) stay balanced."""
    parts: list[str] = []
    buf = ""
    for line in text.split("\n"):
        while len(line) > limit:  # one overlong line: cut it, never inside a tag or an entity
            if buf:
                parts.append(buf)
                buf = ""
            at = _safe_cut(line, limit)
            parts.append(line[:at])
            line = line[at:]
        candidate = f"{buf}\n{line}" if buf else line
        if len(candidate) > limit:
            parts.append(buf)
            buf = line
        else:
            buf = candidate
    if buf or not parts:
        parts.append(buf)
    return parts


def _safe_cut(line: str, limit: int) -> int:
    chunk = line[:limit]
    at = limit
    lt, amp = chunk.rfind("<"), chunk.rfind("&")
    if lt > chunk.rfind(">"):
        at = min(at, lt)
    if amp > chunk.rfind(";"):
        at = min(at, amp)
    return at if at > 0 else limit
