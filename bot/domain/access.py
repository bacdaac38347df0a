"""Who read what: a row for every time a case's personal data was shown to someone.

Personal data is the citizen's name and contact (on a card, under ``/case``, in an export) and the
case's files. A row says when (UTC), which case, through what (``VIA_LABELS``) and to whom: a
person (their Telegram id and name, and the chat it was shown in), a chat (a card posted in a
group: the group and its unit), or the command line. Nothing of the data itself.

Where the rows are written:
- ``/case`` (and its files): before the reply goes out (``AccessLog.shown``).
- cards delivered by the outbox (bot/jobs/outbox.py): in the transaction that marks the card sent,
  and when an edit makes the name and contact appear on a card that did not show them
  (``bot.domain.outbox.OutboxStore.record_card``, ``card_personal``). Other edits of a card that
  already shows them are not new views: the data was already in that chat.
- exports with personal data (``/export``, ``casebot export``): one row per case in the file, once it
  is written and before it is handed over.
- ``/search`` results found by the citizen's name or phone, which show them: before the reply.
- the working group's "Verify with the citizen" message, which carries the name and phone: in the
  transaction of the resolution that queues it.

Rows are only added (triggers refuse updates and deletes) and kept for good.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.db import Database, Row, Tx, from_db, to_db
from bot.domain.errors import CaseNotFound, Forbidden
from bot.domain.rules import SEES_ACCESS_LOG
from bot.domain.units import UnitService, localized
from bot.i18n import N_

if TYPE_CHECKING:  # bot.domain.model imports bot.domain.outbox, which imports this module
    from bot.domain.model import Actor
    from bot.domain.people import PeopleService

VIA_CARD = "card"      # a case card with the citizen's name and contact, posted or made to show them
VIA_CASE = "case"      # /case with the name and contact
VIA_FILES = "files"    # the case's photos and documents sent to a chat
VIA_EXPORT = "export"  # a file with the citizen's name and contact (/export, casebot export)
VIA_SEARCH = "search"  # /search found a case by its citizen's name or phone and showed them
VIA_NOTICE = "notice"  # a message with the name and contact ("Verify with the citizen")
VIA_LABELS: dict[str, str] = {
    VIA_CARD: N_("card"),
    VIA_CASE: N_("/case"),
    VIA_FILES: N_("files"),
    VIA_EXPORT: N_("export"),
    VIA_SEARCH: N_("/search"),
    VIA_NOTICE: N_("notice"),
}
CLI_NAME = "casebot CLI"
WG_CHAT_NAME = "working group"  # who_name of the working group's own chat
PAGE_SIZE = 20
REFUSAL = "accesslog"  # what a refused /accesslog is logged as (see /refusals)


@dataclass(frozen=True)
class Viewer:
    """To whom personal data is shown."""

    who_id: int | None      # a person's Telegram id; a group's chat id; None: the command line
    who_name: str
    chat_id: int | None     # where it was shown
    unit_id: int | None = None  # the unit whose chat that is

    @classmethod
    def person(cls, actor: Actor) -> Viewer:
        return cls(actor.tg_id, actor.name, actor.chat_id)


CLI = Viewer(None, CLI_NAME, None)


@dataclass(frozen=True)
class Access:
    """A row of the log, as read."""

    id: int
    at: datetime
    case_id: int
    via: str
    who_id: int | None
    who_name: str
    chat_id: int | None
    unit_id: int | None
    unit_key: str | None
    unit_name_en: str | None
    unit_name_km: str | None

    @property
    def unit_name(self) -> str | None:
        """The unit's name in the reader's language."""
        return None if self.unit_name_en is None else localized(self.unit_name_en, self.unit_name_km)

    @property
    def in_group(self) -> bool:
        return self.chat_id is not None and self.chat_id < 0


_INSERT = ("INSERT INTO data_access(at, case_id, via, who_id, who_name, chat_id, unit_id)"
           " VALUES(?,?,?,?,?,?,?)")
_SELECT = ("SELECT a.*, u.key AS unit_key, u.name AS unit_name, u.name_km AS unit_name_km"
           " FROM data_access a LEFT JOIN units u ON u.id = a.unit_id")


def add(conn: Tx, viewer: Viewer, case_ids: Iterable[int], via: str, now: datetime) -> None:
    """Write the rows in a transaction: with the action that shows the data, where there is one."""
    at = to_db(now)
    conn.add_many(_INSERT, [(at, case_id, via, viewer.who_id, viewer.who_name, viewer.chat_id,
                             viewer.unit_id) for case_id in case_ids])


async def record(db: Database, viewer: Viewer, case_ids: Iterable[int], via: str,
                 now: datetime) -> None:
    """Write the rows in a transaction of their own (a read has no transaction to join)."""
    ids = list(case_ids)
    if not ids:
        return
    async with db.transaction() as conn:
        add(conn, viewer, ids, via, now)


def _access(r: Row) -> Access:
    return Access(r["id"], from_db(r["at"]) or datetime.min, r["case_id"], r["via"], r["who_id"],
                  r["who_name"], r["chat_id"], r["unit_id"], r["unit_key"], r["unit_name"],
                  r["unit_name_km"])


class AccessLog:
    def __init__(self, db: Database, units: UnitService, people: PeopleService) -> None:
        self.db = db
        self.units = units
        self.people = people

    async def chat(self, chat_id: int) -> Viewer:
        """Who sees what is posted in a chat: the person (a private chat), or the group, named
        by its unit (or as the working group's chat)."""
        if chat_id > 0:
            row = await self.db.one("SELECT name FROM people WHERE tg_id = ?", (chat_id,))
            return Viewer(chat_id, str(row[0]) if row else str(chat_id), chat_id)
        unit = await self.units.unit_for_chat(chat_id)
        if unit is not None:
            return Viewer(chat_id, unit.name_en, chat_id, unit.id)
        if chat_id == await self.units.wg_chat_id():
            return Viewer(chat_id, WG_CHAT_NAME, chat_id)
        return Viewer(chat_id, str(chat_id), chat_id)

    async def person(self, actor: Actor) -> Viewer:
        """Someone, in the chat they asked in (and the unit whose chat that is)."""
        viewer = Viewer.person(actor)
        if actor.chat_id is not None and actor.chat_id < 0:
            unit = await self.units.unit_for_chat(actor.chat_id)
            if unit is not None:
                return replace(viewer, unit_id=unit.id)
        return viewer

    async def shown(self, actor: Actor, case_id: int, vias: Iterable[str], now: datetime) -> None:
        """Someone was shown the case's personal data (``/case``, its files)."""
        viewer = await self.person(actor)
        async with self.db.transaction() as conn:
            for via in vias:
                add(conn, viewer, (case_id,), via, now)

    async def shown_cases(self, actor: Actor, case_ids: Iterable[int], via: str,
                          now: datetime) -> None:
        """Someone was shown the personal data of these cases at once (``/search``)."""
        await record(self.db, await self.person(actor), case_ids, via, now)

    async def page(self, actor: Actor, case_id: int, page: int,
                   now: datetime) -> tuple[list[Access], int, int]:
        """The case's rows, newest first, one page of ``PAGE_SIZE`` (the last one if ``page`` is
        beyond it), how many in all and the page shown. Admins only: anyone else is refused,
        and the refusal logged."""
        if not await self.people.global_roles(actor.tg_id) & SEES_ACCESS_LOG:
            await self.people.log_refusal(actor.tg_id, REFUSAL, case_id, actor.chat_id, now)
            raise Forbidden()
        rows, total = await self.db.batch(
            ("SELECT id FROM cases WHERE id = ?", (case_id,)),
            ("SELECT COUNT(*) FROM data_access WHERE case_id = ?", (case_id,)))
        if not rows:
            raise CaseNotFound(case_id)
        count = int(total[0][0])
        page = min(max(page, 0), max(0, (count - 1) // PAGE_SIZE))
        found = await self.db.all(_SELECT + " WHERE a.case_id = ? ORDER BY a.id DESC LIMIT ? OFFSET ?",
                                  (case_id, PAGE_SIZE, page * PAGE_SIZE))
        return [_access(r) for r in found], count, page

    async def rows(self, case_id: int | None = None,
                   since: datetime | None = None) -> AsyncIterator[Access]:
        """Every row (of a case, from a time on), oldest first, read a batch at a time."""
        where: list[str] = []
        params: list[Any] = []
        if case_id is not None:
            where.append("a.case_id = ?")
            params.append(case_id)
        if since is not None:
            where.append("a.at >= ?")
            params.append(to_db(since))
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY a.id"
        async for r in self.db.stream(sql, params, 500):
            yield _access(r)
