"""Who gets told what when a case changes: the unit's chat, the working group, supervisors up the
tree, the reminder ladder's recipients; each message drawn in its reader's language and queued in
the outbox with the change.

A part of ``CaseService`` (bot/domain/cases.py), which calls ``_notify`` inside its transaction.
"""


import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from babel.dates import format_date

from bot.config import Settings
from bot.db import Database, Tx
from bot.domain import access, outbox
from bot.domain.model import (
    SYSTEM,
    Actor,
    CaseView,
    Message,
    Step,
    actor_shown,
    cut_text,
    days_label,
    files_label,
)
from bot.domain.people import PeopleService
from bot.domain.requests import PING_PAYLOAD
from bot.domain.rules import (
    ACTION_LABELS,
    CHANNEL_LABELS,
    OUTCOME_LABELS,
    Action,
    DeadlinePolicy,
    Role,
)
from bot.domain.units import Unit, UnitService
from bot.i18n import N_, _, current_locale, label, ngettext, use_locale

LIST_MAX = 20       # cases listed in one message of the ladder (a button each)
LIST_CHARS = 3500   # and its text, well within Telegram's 4,096 characters
STEP_LABELS: dict[str, str] = {  # a reminder's step, when it is not resolving the case
    "accept": N_("not accepted"),
    "acknowledge": N_("not acknowledged"),
    "verify": N_("not verified"),
}
KIND_RANK = {"warn": 0, "remind": 1, "escalate": 2}


@dataclass(frozen=True)
class LadderNote:
    """What one step of the reminder ladder tells one chat about one case."""

    chat: int
    case: CaseView
    kind: str                   # warn | remind | escalate
    step: str                   # accept | acknowledge | resolve | verify
    days: int                   # overdue by, in (working) days
    level: int = 0              # escalations: 2 (the unit's supervisors) or 3 (those above)
    buttons: str | None = None  # on its own message: ladder | verify | update | None
    deadline: datetime | None = None
    unit: Unit | None = None    # its unit, else its place: named in each reader's language

    @property
    def rank(self) -> tuple[int, int]:
        return KIND_RANK[self.kind], self.level

NOTICE_SUMMARY = 60  # characters of the case's summary in a notice to the working group


class Telling:
    db: Database
    settings: Settings
    units: UnitService
    people: PeopleService
    policy: DeadlinePolicy

    if TYPE_CHECKING:  # CaseService's and Deadlines'
        async def is_staff(self, actor: Actor) -> bool: ...

        @staticmethod
        def _deadline(case: CaseView) -> datetime | None: ...

        @staticmethod
        def _step_name(case: CaseView) -> str: ...

    async def working_group_chats(self) -> list[int]:
        chat = await self.units.wg_chat_id()
        return [chat] if chat is not None else await self.people.holders(Role.WORKING_GROUP)

    async def chat_name(self, chat_id: int) -> str:
        """A readable name for a chat: the person's name, or the unit whose chat it is."""
        if chat_id > 0:
            row = await self.db.one("SELECT name FROM people WHERE tg_id = ?", (chat_id,))
            return str(row[0]) if row else str(chat_id)
        unit = await self.units.unit_for_chat(chat_id)
        return unit.name if unit else str(chat_id)

    async def _send(
        self, conn: Tx, chats: list[int], make: Callable[[], Message], now: datetime,
        case_id: int | None,
    ) -> None:
        """Queue a message to each chat, written in that chat's language: ``make`` is called
        once per language, under it, and returns the text (and buttons); an empty text: nothing."""
        by_lang: dict[str, list[int]] = {}
        for chat in chats:
            by_lang.setdefault(await self.units.language_of(chat), []).append(chat)
        for lang, group in by_lang.items():
            with use_locale(lang):
                made = make()
            text, buttons = made if isinstance(made, tuple) else (made, None)
            if text:
                for chat in group:
                    outbox.queue_text(conn, chat, text, now, buttons=buttons, case_id=case_id)

    async def _tell_working_group(
        self, conn: Tx, make: Callable[[], Message], now: datetime, case_id: int,
    ) -> None:
        await self._send(conn, await self.working_group_chats(), make, now, case_id)

    async def tell_requests_waiting(self, conn: Tx, now: datetime) -> None:
        """The working group's ping for new requests from citizens (bot/domain/requests.py): one
        message, marked so that a burst of requests sends no second one while it waits."""
        for chat in await self.working_group_chats():
            with use_locale(await self.units.language_of(chat)):
                text = _("📥 New requests from citizens are waiting. /inbox lists them.")
            outbox.queue_text(conn, chat, text, now, mark=PING_PAYLOAD)

    async def _notify(self, st: Step) -> None:
        """Queue what follows the change: cards, the unit's notices, the working group's line,
        each in its reader's language."""
        conn, now, action, n = st.conn, st.now, st.action, st.case.id
        outbox.queue_refresh(conn, n, now)  # every posted card shows the new state
        if action in (Action.WARN, Action.REMIND, Action.ESCALATE, Action.HELP, Action.SNOOZE):
            await self._notify_ladder(st)
            return
        if st.new_unit_id is not None and st.new_unit_chat is not None:
            outbox.queue_card(conn, st.new_unit_chat, n, st.new_unit_id, now, files=st.card_files)
        staff_note = action is Action.NOTE and await self.is_staff(st.actor)
        unit_chat = await self._unit_chat(st.case.unit_id)
        new_unit = await self.units.by_id(st.new_unit_id) if st.new_unit_id is not None else None
        who, note = html.escape(actor_shown(st.actor.name, st.actor.tg_id)), html.escape(st.text)

        def when(value: datetime) -> str:
            return format_date(value.astimezone(self.settings.tz), "d MMM y", locale=current_locale())

        def to_unit() -> str:
            if action is Action.PROVIDE_INFO and st.actor.citizen_id is not None:
                return _("Answer from the citizen on #{n}: {text}").format(n=n, text=note)
            if action is Action.PROVIDE_INFO:
                return _("Answer from the working group on #{n}: {text}").format(n=n, text=note)
            if action is Action.REOPEN:
                return (_("#{n} is reopened: the citizen disputes the resolution: {reason}")
                        if st.data.get("disputed") else _("#{n} is reopened: {reason}")).format(
                    n=n, reason=note)
            if action is Action.VERIFY:
                return _("#{n} is {outcome}.").format(n=n, outcome=label(OUTCOME_LABELS, st.data["outcome"]))
            if action is Action.ASK_CITIZEN:
                return _("The working group passed your question on #{n} to the citizen.").format(n=n)
            if action is Action.SET_DUE and st.change.due is not None:
                return _("New deadline for #{n}: {when}.").format(n=n, when=when(st.change.due))
            if staff_note:
                return _("Note on #{n} from {who}: {text}").format(n=n, who=who, text=note)
            return ""

        # The summary as the change leaves it (an erasure takes the citizen's name out of it).
        summary = html.escape(cut_text(st.updates.get("summary", st.case.summary), NOTICE_SUMMARY))

        def wg_line() -> tuple[str, outbox.Buttons | None]:
            if action is Action.ERASE and st.actor.tg_id == SYSTEM.tg_id:
                return "", None  # the retention period's erasures: recorded, not announced one by one
            line = _("#{n} ({summary}) · {action} by {who}").format(
                n=n, summary=summary, action=label(ACTION_LABELS, action), who=who)
            if new_unit is not None:
                line += " → " + html.escape(new_unit.name)
            if action is Action.FORWARD and st.new_unit_chat is None:
                line += " (" + _("by {channel}; follow up by {when}").format(
                    channel=label(CHANNEL_LABELS, st.data["channel"]),
                    when=when(datetime.fromisoformat(st.updates["due_at"]))) + ")"
            if action is Action.FORWARD and files_label(st.data):
                line += " · " + files_label(st.data)
            if st.data.get("reference"):
                line += " · " + _("their reference: {ref}").format(ref=html.escape(st.data["reference"]))
            if action is Action.VERIFY:
                line += " · " + label(OUTCOME_LABELS, st.data["outcome"])
            if action is Action.MERGE:
                line += " → #" + str(st.data["into"])
            if action is Action.SET_DUE:
                line += " · " + to_unit()
            buttons: outbox.Buttons | None = None
            if action is Action.NEED_INFO:
                line += "\n" + _("Needed: {what}").format(what=note)
                buttons = [[(_("Answer…"), f"ans:{n}")]]
                if st.case.citizen_id is not None:  # a citizen in the loop: they may answer
                    buttons[0].append((_("📨 Ask the citizen"), f"ask:{n}"))
            elif action in (Action.RESOLVE, Action.OUTCOME):
                # What the working group needs to call: the citizen's name and phone (they may
                # see them; recorded as a view below).
                citizen = html.escape(st.case.citizen_name)
                if st.case.citizen_contact:
                    citizen += " · " + html.escape(st.case.citizen_contact)
                line += ": " + note + "\n" + _("Verify with the citizen: {citizen}").format(
                    citizen=citizen)
                buttons = verification_buttons(n, st.case.version + 1)
            elif st.text:
                line += ": " + note
            return line, buttons

        if unit_chat is not None:
            await self._send(conn, [unit_chat], to_unit, now, n)
        wg_chats = await self.working_group_chats()
        if action in (Action.RESOLVE, Action.OUTCOME):
            await self._record_notice(conn, wg_chats, n, now)
            if st.actor.tg_id in wg_chats:
                # Who resolved it (an /outcome is the working group's) may not verify it: their
                # own private chat gets the line without buttons they cannot use.
                wg_chats = [c for c in wg_chats if c != st.actor.tg_id]
                await self._send(conn, [st.actor.tg_id], lambda: (wg_line()[0], None), now, n)
        await self._send(conn, wg_chats, wg_line, now, n)
        if st.data.get("bouncing"):
            await self._flag_bouncing(st)

    async def _record_notice(self, conn: Tx, chats: list[int], case_id: int, now: datetime) -> None:
        """A message with the citizen's name and contact is queued to these chats: a view of
        their personal data by each (bot/domain/access.py), recorded with the change."""
        wg_chat = await self.units.wg_chat_id()
        for chat in chats:
            if chat == wg_chat:
                viewer = access.Viewer(chat, access.WG_CHAT_NAME, chat)
            else:
                row = await conn.one("SELECT name FROM people WHERE tg_id = ?", (chat,))
                viewer = access.Viewer(chat, str(row[0]) if row else str(chat), chat)
            access.add(conn, viewer, (case_id,), access.VIA_NOTICE, now)

    async def _notify_ladder(self, st: Step) -> None:
        """Warnings, reminders, escalations and calls for help: to the people the step concerns.
        In the ladder's run (``st.ladder``) what a step tells is gathered, to go one message per
        chat with what the other cases' steps tell (``_tell_ladder``)."""
        case, n, now, conn = st.case, st.case.id, st.now, st.conn
        if st.action is Action.SNOOZE:
            return  # recorded in the history; the reminder comes back tomorrow
        if st.action is Action.HELP:
            def help_text() -> str:
                return "🆘 " + _("{who} asks for help with #{n} ({unit}): {text}").format(
                    who=html.escape(st.actor.name), n=n, unit=html.escape(case.unit_name or case.place),
                    text=html.escape(st.text))
            await self._send(conn, await self._supervisors_near(case, above=False), help_text, now, n)
            await self._tell_working_group(conn, help_text, now, n)
            return
        notes = await self._ladder_notes(st)
        if st.ladder is not None:
            st.ladder.extend(notes)
        else:
            await self._tell_ladder(conn, notes, now)

    async def _ladder_notes(self, st: Step) -> list[LadderNote]:
        """Who a warning, a reminder or an escalation of the case goes to, and how."""
        case, now = st.case, st.now
        deadline = self._deadline(case)
        unit = await self.units.by_id(case.unit_id or case.place_unit_id)

        def note(chats: list[int], kind: str, buttons: str | None = None, level: int = 0) -> list[LadderNote]:
            return [LadderNote(chat, case, kind, step, days, level, buttons, deadline, unit)
                    for chat in chats]

        if st.action is Action.ESCALATE:
            step, days = self._step_name(case), self.policy.days_after(deadline, now) if deadline else 0
            level = st.data["level"]
            supervisors = await self._supervisors_near(case, above=level >= 3)
            out = note(supervisors, "escalate", level=level)
            if level >= 3 or not supervisors:  # no supervisor up the tree: the working group
                out += note(await self.working_group_chats(), "escalate", level=level)
            return out
        step, days = st.data["step"], st.data.get("overdue_days", 0)
        kind = "warn" if st.action is Action.WARN else "remind"
        wg = await self.working_group_chats()
        if step == "verify":
            return note(wg, kind, "verify")
        out = note(wg, kind) if step == "acknowledge" and kind == "remind" else []
        target = await self._unit_chat(case.unit_id)
        if step == "resolve" and case.assignee_id is not None and await self.people.has_private_chat(
                case.assignee_id):
            target = case.assignee_id
        if target is not None:
            return out + note([target], kind, "ladder" if kind == "remind" else "update")
        return out if out else note(wg, kind)

    async def _tell_ladder(self, conn: Tx, notes: list[LadderNote], now: datetime) -> None:
        """One message per chat, in its language: what one case's step tells it as that step's
        own message (with its buttons); several cases as one list, oldest first, a button per
        case. A case told twice (an escalation to the working group, which also had its
        reminder) is listed once, as its highest step."""
        by_chat: dict[int, dict[int, LadderNote]] = {}
        for note in notes:
            cases = by_chat.setdefault(note.chat, {})
            kept = cases.get(note.case.id)
            if kept is None or note.rank > kept.rank:
                cases[note.case.id] = note
        for chat, cases in by_chat.items():
            told = list(cases.values())
            with use_locale(await self.units.language_of(chat)):
                text, buttons = self._ladder_one(told[0]) if len(told) == 1 else self._ladder_list(told)
            outbox.queue_text(conn, chat, text, now, buttons=buttons,
                              case_id=told[0].case.id if len(told) == 1 else None)

    def _ladder_one(self, note: LadderNote) -> tuple[str, outbox.Buttons | None]:
        case, n = note.case, note.case.id
        unit, summary = self._where(note), html.escape(cut_text(case.summary, 80))
        days = days_label(max(1, note.days))
        if note.kind == "escalate":
            text = "⬆️ " + _("#{n} ({unit}) is overdue by {days}: {summary}").format(
                n=n, unit=unit, days=days, summary=summary) + "\n" + _(
                "Escalated to you. /case {n} shows it.").format(n=n)
        elif note.kind == "warn":
            text = "⏳ " + _("Deadline {when} for #{n} ({unit}): {summary}").format(
                when=self._when(note.deadline), n=n, unit=unit, summary=summary)
        else:
            text = "⏰ " + {
                "accept": _("#{n} ({unit}) is still not accepted, {days} after the deadline: {summary}"),
                "acknowledge": _("#{n} is not acknowledged by {unit}, {days} after the deadline: "
                                 "{summary}"),
                "verify": _("#{n} ({unit}) is resolved but not verified, {days} after the deadline: "
                            "{summary}"),
                "resolve": _("#{n} ({unit}) is overdue by {days}: {summary}"),
            }[note.step].format(n=n, unit=unit, days=days, summary=summary)
        v = case.version
        buttons: outbox.Buttons | None = {
            "verify": lambda: verification_buttons(n, v),
            "ladder": lambda: [[(_("🔄 Update status"), f"c:{n}:{v}:upd"),
                                (_("😴 Snooze 1 day"), f"c:{n}:{v}:snz")],
                               [(_("🆘 Ask for help"), f"c:{n}:{v}:hlp")]],
            "update": lambda: [[(_("🔄 Update status"), f"c:{n}:{v}:upd")]],
        }.get(note.buttons or "", lambda: None)()
        return text, buttons

    def _ladder_list(self, notes: list[LadderNote]) -> tuple[str, outbox.Buttons]:
        """Several cases in one message, within Telegram's limits (4,096 characters, 100
        buttons): escalations, then reminders, oldest first, then deadlines near, soonest first;
        at most ``LIST_MAX`` listed, each with a button that posts its card; the rest counted,
        with a button to page through the overdue cases."""
        lines: list[str] = []
        listed: list[LadderNote] = []
        size, hidden = 0, 0
        sections = (
            ("escalate", lambda k: "⬆️ " + ngettext(
                "{count} overdue case is escalated to you:",
                "{count} overdue cases are escalated to you, oldest first:", k)),
            ("remind", lambda k: "⏰ " + ngettext(
                "{count} of your cases is overdue:", "{count} of your cases are overdue, oldest first:", k)),
            ("warn", lambda k: "⏳ " + ngettext(
                "{count} deadline is near:", "{count} deadlines are near, soonest first:", k)),
        )
        for kind, header in sections:
            group = [n for n in notes if n.kind == kind]
            if not group:
                continue
            if kind == "warn":
                group.sort(key=lambda n: (n.deadline or n.case.received_at, n.case.id))
            else:
                group.sort(key=lambda n: (n.case.received_at, n.case.id))
            title = header(len(group)).format(count=len(group))
            lines.append(("\n" if lines else "") + title)
            size += len(title) + 2
            for note in group:
                line = self._ladder_line(note)
                if len(listed) < LIST_MAX and size + len(line) + 1 <= LIST_CHARS:
                    lines.append(line)
                    listed.append(note)
                    size += len(line) + 1
                else:
                    hidden += 1
        buttons: outbox.Buttons = [
            [(f"#{n.case.id}", f"c:{n.case.id}:{n.case.version}:upd") for n in listed[i:i + 4]]
            for i in range(0, len(listed), 4)]
        if hidden:
            lines.append(_("… and {n} more: /overdue lists them.").format(n=hidden))
            buttons.append([(_("Overdue cases ›"), "od:0")])
        else:
            lines.append(_("A case's button posts its card here."))
        return "\n".join(lines), buttons

    def _ladder_line(self, note: LadderNote) -> str:
        case = note.case
        head = f"• <b>#{case.id}</b> · {self._where(note)} · "
        if note.kind == "warn":
            head += _("Due {when}").format(when=self._when(note.deadline))
        else:
            head += _("overdue by {days}").format(days=days_label(max(1, note.days)))
            if note.step in STEP_LABELS:
                head += " · " + label(STEP_LABELS, note.step)
        return head + " · " + html.escape(cut_text(case.summary, 60))

    @staticmethod
    def _where(note: LadderNote) -> str:
        """The case's unit (else its place), in the current reader's language, escaped."""
        case = note.case
        return html.escape(note.unit.name if note.unit is not None else case.unit_name or case.place)

    def _when(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_date(value.astimezone(self.settings.tz), "EEE d MMM", locale=current_locale())

    async def _supervisors_near(self, case: CaseView, *, above: bool) -> list[int]:
        """The supervisors of the case's unit (the nearest unit up the tree that has some), or,
        with ``above``, those of the unit above that."""
        chain = self.units.ancestors_or_self(case.unit_id or case.place_unit_id)
        found_own = False
        for unit_id in chain:
            holders = await self.people.holders(Role.SUPERVISOR, unit_id)
            if not holders:
                continue
            if not above or found_own:
                return holders
            found_own = True
        return []

    async def _flag_bouncing(self, st: Step) -> None:
        """Three hand-offs (configurable): the working group and the supervisors concerned hear at once."""
        n, case = st.case.id, st.case

        def text() -> str:
            return "⚠️ " + _("#{n} is bouncing: handed off {count} times. /bouncing lists such cases.").format(
                n=n, count=st.updates["handoffs"])
        await self._tell_working_group(st.conn, text, st.now, n)
        supervisors: set[int] = set()
        for unit_id in self.units.ancestors_or_self(case.place_unit_id):
            supervisors.update(await self.people.holders(Role.SUPERVISOR, unit_id))
        await self._send(st.conn, sorted(supervisors), text, st.now, n)

    async def _unit_chat(self, unit_id: int | None) -> int | None:
        if unit_id is None:
            return None
        unit = await self.units.by_id(unit_id)
        return None if unit is None else unit.chat_id


def verification_buttons(case_id: int, version: int) -> outbox.Buttons:
    """Under a resolution, for whoever verifies it with the citizen."""
    def data(code: str) -> str:
        return f"c:{case_id}:{version}:{code}"

    return [
        [(_("✅ Citizen confirmed"), data("cfm")), (_("📵 Could not reach"), data("unr"))],
        [(_("⚠️ Citizen disputes…"), data("dis")), (_("↩️ Reopen…"), data("reo"))],
    ]
