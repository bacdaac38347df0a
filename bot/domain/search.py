"""Finding cases: ``/search`` and the duplicate hint at intake.

``/search <words>`` finds, within what the caller may read, the case of that number, the case of
that old register reference (imported backlog), and cases whose summary holds every word; and,
only for those who may see the citizen's personal data of a case (where they ask: a group sees it
only for its own unit's cases, as ``/case``), cases whose citizen's name holds every word or whose
contact holds that phone number however it is written (spaces, dashes, ``0`` or ``+855``, Khmer
digits). A case found by its name or phone is never shown to someone who may not see them: the
hit itself would tell them. A result that shows a name and contact is a view of personal data,
recorded in the access log (``access.VIA_SEARCH``) before it is shown.

At intake (``/new``), before **Create**, the open cases that look like the same request: the same
contact (the phone number, or the same text), or a very similar summary about the same place.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from bot.domain.cases import CaseService
from bot.domain.errors import Invalid
from bot.domain.model import CASE_SELECT, Actor, CaseView, Draft, case_view
from bot.domain.rules import READ_ROLES, SEES_PERSONAL_DATA, UNFINISHED_STATUSES
from bot.i18n import _
from bot.inputs import ascii_digits, parse_case_number

SHOWN = 10            # results listed in one answer
CANDIDATES = 200      # rows read before the per-case rights are checked
QUERY_MAX = 100       # characters of a search
PHONE_DIGITS = 6      # a phone number has at least this many digits (after 0 / 855)
SIMILAR = 0.8         # how alike two summaries must be to be offered as a duplicate
DUPLICATES = 2        # duplicates offered at intake

_PHONE_TEXT = re.compile(r"[+0-9០-៩\s().\-]+")
_SEPARATORS = (" ", "-", ".", "(", ")", "+", "\u00a0")
_KHMER_DIGITS = "០១២៣៤៥៦៧៨៩"

# Why a case was found (what the answer says about it).
BY_NUMBER, BY_REFERENCE, BY_SUMMARY, BY_NAME, BY_PHONE = (
    "number", "reference", "summary", "name", "phone")
PERSONAL_HITS = frozenset({BY_NAME, BY_PHONE})


@dataclass(frozen=True)
class Found:
    case: CaseView
    why: frozenset[str]
    personal: bool  # its name and contact are shown (found by them, where they may be seen)


@dataclass(frozen=True)
class Results:
    found: list[Found]   # the first SHOWN
    total: int           # how many the caller may see (at most CANDIDATES)
    more: bool           # CANDIDATES were read: there may be more


@dataclass(frozen=True)
class Duplicate:
    case: CaseView
    same_contact: bool  # else: a similar summary


def national_number(text: str) -> str | None:
    """The digits of a phone number without its country code or leading 0 (``012 345 678``,
    ``+855 12 345 678`` and ``០១២៣៤៥៦៧៨`` all give ``12345678``), or None when ``text`` is not
    written like a phone number."""
    if not _PHONE_TEXT.fullmatch(text.strip()):
        return None
    digits = "".join(ch for ch in ascii_digits(text) if ch.isdigit())
    for prefix in ("00855", "855", "0"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
            break
    return digits if len(digits) >= PHONE_DIGITS else None


def _sql_digits(column: str) -> str:
    """SQL for the column's text with separators dropped and Khmer digits made ASCII."""
    expr = column
    for sep in _SEPARATORS:
        expr = f"REPLACE({expr}, '{sep}', '')"
    for i, digit in enumerate(_KHMER_DIGITS):
        expr = f"REPLACE({expr}, '{digit}', '{i}')"
    return expr


def _like(word: str) -> str:
    """A LIKE pattern for ``word`` anywhere (``%`` and ``_`` in it taken literally)."""
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _normal(text: str) -> str:
    """A summary reduced for comparing: case, punctuation and spacing do not count."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = "".join(ch if ch.isalnum() or unicodedata.category(ch).startswith("M") else " "
                   for ch in text)
    return " ".join(text.split())


def similarity(a: str, b: str) -> float:
    """How alike two summaries are (0 to 1), word order aside."""
    x, y = _normal(a), _normal(b)
    if not x or not y:
        return 0.0
    best = 0.0
    for left, right in ((x, y), (" ".join(sorted(x.split())), " ".join(sorted(y.split())))):
        matcher = SequenceMatcher(None, left, right, autojunk=False)
        if matcher.real_quick_ratio() >= SIMILAR and matcher.quick_ratio() >= SIMILAR:
            best = max(best, matcher.ratio())
    return best


class CaseSearch:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.db = cases.db

    async def _may_see_personal(self, actor: Actor, case: CaseView, roles: frozenset[Any]) -> bool:
        """As ``CaseService.visible``: by role, and in a group only the case's unit chat or the
        working group's."""
        if not roles & SEES_PERSONAL_DATA:
            return False
        chat = actor.chat_id
        if chat is not None and chat < 0:
            return chat == await self.cases._unit_chat(case.unit_id) or chat in (
                await self.cases.working_group_chats())
        return True

    async def search(self, actor: Actor, text: str) -> Results:
        text = " ".join(text.split())
        if len(text) > QUERY_MAX:
            raise Invalid(_("A search has at most {n} characters.").format(n=QUERY_MAX))
        words = text.split()
        number = parse_case_number(text) if len(words) == 1 else None
        phone = national_number(text)
        hits: list[str] = []
        params: list[Any] = []

        def hit(name: str, sql: str, *values: Any) -> None:
            hits.append(f"({sql}) AS {name}")
            params.extend(values)

        hit(BY_NUMBER, "c.id = ?", number or 0)
        hit(BY_REFERENCE, "c.external_ref IS NOT NULL AND c.external_ref LIKE ? ESCAPE '\\'",
            _like(text) if len(text) >= 3 else "")
        summary = " AND ".join("c.summary LIKE ? ESCAPE '\\'" for _w in words) or "FALSE"
        hit(BY_SUMMARY, summary, *[_like(w) for w in words])
        name = " AND ".join("c.citizen_name LIKE ? ESCAPE '\\'" for _w in words) or "FALSE"
        hit(BY_NAME, name, *[_like(w) for w in words])
        hit(BY_PHONE, f"{_sql_digits('c.citizen_contact')} LIKE ?" if phone else "FALSE",
            *([f"%{phone}%"] if phone else []))
        where, scope_params = await self._scope(actor)
        names = [BY_NUMBER, BY_REFERENCE, BY_SUMMARY, BY_NAME, BY_PHONE]
        unfinished = ",".join(f"'{s}'" for s in sorted(UNFINISHED_STATUSES))
        rows = await self.db.all(
            f"SELECT * FROM (SELECT c.id, c.status, c.received_at, {', '.join(hits)} FROM cases c"
            f"{where}) AS hits WHERE {' OR '.join(names)}"
            f" ORDER BY {BY_NUMBER} DESC, {BY_REFERENCE} DESC, status IN ({unfinished}) DESC,"
            " received_at DESC, id DESC LIMIT ?",
            [*params, *scope_params, CANDIDATES])
        views: dict[int, CaseView] = {}
        for i in range(0, len(rows), 100):
            ids = [int(r["id"]) for r in rows[i:i + 100]]
            for v in await self.db.all(
                    f"{CASE_SELECT} WHERE c.id IN ({','.join('?' * len(ids))})", ids):
                views[int(v["id"])] = case_view(v)
        found: list[Found] = []
        for r in rows:
            case = views[int(r["id"])]
            roles = await self.cases.roles(actor, case)
            if not roles & READ_ROLES:
                continue
            why = frozenset(n for n in names if r[n])
            personal = bool(why & PERSONAL_HITS) and await self._may_see_personal(actor, case, roles)
            if not personal:
                why -= PERSONAL_HITS
            if why:
                found.append(Found(case, why, personal))
        return Results(found[:SHOWN], len(found), len(rows) >= CANDIDATES)

    async def _scope(self, actor: Actor) -> tuple[str, list[Any]]:
        """A first cut in SQL (the case's unit or place within the person's units); the rights
        on each case are checked after."""
        scope = await self.cases.people.unit_scope(actor.tg_id)
        if scope is None:
            return "", []
        ids = sorted(scope) or [0]
        marks = ",".join("?" * len(ids))
        return f" WHERE (c.unit_id IN ({marks}) OR c.place_unit_id IN ({marks}))", [*ids, *ids]

    async def duplicates(self, draft: Draft) -> list[Duplicate]:
        """Open cases that look like the draft's request: the same contact first, then a very
        similar summary about the same place; at most DUPLICATES."""
        statuses = sorted(UNFINISHED_STATUSES)
        marks = ",".join("?" * len(statuses))
        out: list[Duplicate] = []
        contact = draft.citizen_contact.strip()
        if contact:
            phone = national_number(contact)
            if phone:
                match, value = f"{_sql_digits('c.citizen_contact')} LIKE ?", f"%{phone}%"
            else:
                match, value = "LOWER(TRIM(c.citizen_contact)) = LOWER(?)", contact
            rows = await self.db.all(
                f"{CASE_SELECT} WHERE c.status IN ({marks}) AND {match}"
                " ORDER BY c.received_at DESC, c.id DESC LIMIT ?", [*statuses, value, DUPLICATES])
            out += [Duplicate(case_view(r), True) for r in rows]
        if draft.summary.strip() and draft.place_unit_id is not None and len(out) < DUPLICATES:
            rows = await self.db.all(
                f"SELECT c.id, c.summary FROM cases c WHERE c.status IN ({marks})"
                " AND c.place_unit_id = ?", [*statuses, draft.place_unit_id])
            taken = {d.case.id for d in out}
            scored = sorted(((similarity(draft.summary, r[1]), int(r[0])) for r in rows
                             if int(r[0]) not in taken), reverse=True)
            for score, case_id in scored[:DUPLICATES - len(out)]:
                if score >= SIMILAR:
                    out.append(Duplicate(await self.cases.get(case_id), False))
        return out
