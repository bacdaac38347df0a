"""People and their rights: grants of roles (by invitation or from the config), invitation links
stored only as hashes, revocation, and the log of refused attempts."""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import audit
from bot.bounded import LRUDict
from bot.config import Settings
from bot.db import Conn, Database, Row, from_db, to_db
from bot.domain.errors import Forbidden, Invalid, PersonNotFound
from bot.domain.rules import GLOBAL_ROLES, INVITES, ROLE_LABELS, SEES_PEOPLE, Role
from bot.domain.units import Unit, UnitService, localized
from bot.i18n import _, label
from bot.inputs import excerpt, parse_person

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_WG_MIGRATED = "working_group_migrated"


@dataclass(frozen=True)
class Grant:
    id: int
    tg_id: int
    role: Role
    unit_id: int | None
    unit_key: str | None
    unit_name: str | None
    unit_name_km: str | None = None

    def label(self) -> str:
        role = label(ROLE_LABELS, self.role)
        return role if self.unit_name is None else _("{role} of {unit}").format(
            role=role, unit=localized(self.unit_name, self.unit_name_km))


@dataclass(frozen=True)
class Person:
    tg_id: int
    name: str
    username: str | None
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class Invitation:
    id: int
    role: Role
    unit_name: str | None
    created_by: int
    expires_at: datetime


class InvitationProblem(Invalid):
    """A link that cannot be used: the message says why."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_GRANT_SELECT = """
SELECT g.id, g.tg_id, g.role, g.unit_id, u.key AS unit_key, u.name AS unit_name,
       u.name_km AS unit_name_km
FROM grants g LEFT JOIN units u ON u.id = g.unit_id
WHERE g.revoked_at IS NULL AND (g.unit_id IS NULL OR u.active = 1)
"""
# A person's grants, also those on a unit since removed (they still make the person known).
_PERSON_GRANTS = """
SELECT g.id, g.tg_id, g.role, g.unit_id, u.key AS unit_key, u.name AS unit_name,
       u.name_km AS unit_name_km, g.unit_id IS NULL OR u.active = 1 AS live
FROM grants g LEFT JOIN units u ON u.id = g.unit_id
WHERE g.revoked_at IS NULL AND g.tg_id = ? ORDER BY g.id
"""


def _grant_of(r: Row) -> Grant:
    return Grant(r["id"], r["tg_id"], Role(r["role"]), r["unit_id"], r["unit_key"], r["unit_name"],
                 r["unit_name_km"])


def _grant(c: Conn, tg_id: int, role: str, unit_id: int | None, source: str,
           by: int | None, at: str) -> None:
    """Grant a role (unless held already), recorded in the audit chain; inside a transaction."""
    cur = c.execute(
        "INSERT OR IGNORE INTO grants(tg_id, role, unit_id, source, granted_by, granted_at)"
        " VALUES(?,?,?,?,?,?)", (tg_id, role, unit_id, source, by, at))
    if cur.rowcount == 1:
        audit.record_rows(c, at, "grant", "grants", [cur.lastrowid])


class PeopleService:
    def __init__(self, db: Database, settings: Settings, units: UnitService) -> None:
        self.db = db
        self.settings = settings
        self.units = units
        # Every update asks who its sender is: their grants are kept in memory, and forgotten
        # whenever a grant or a unit changes (``_version``, ``units.generation``).
        # Strangers are looked up too, so the map is bounded (the least recently asked go first).
        self._grants: LRUDict[int, tuple[list[Grant], bool]] = LRUDict()
        self._version = 0
        self._units_generation = units.generation

    def _grants_changed(self) -> None:
        self._version += 1
        self._grants.clear()

    async def _lookup(self, tg_id: int) -> tuple[list[Grant], bool]:
        """The person's active grants (on active units), and whether they hold any grant at all."""
        if self._units_generation != self.units.generation:
            self._units_generation = self.units.generation
            self._grants_changed()
        held = self._grants.get(tg_id)
        if held is None:
            version, generation = self._version, self.units.generation
            rows = await self.db.all(_PERSON_GRANTS, (tg_id,))
            held = ([_grant_of(r) for r in rows if r["live"]], bool(rows))
            if version == self._version and generation == self.units.generation:
                self._grants[tg_id] = held
        return list(held[0]), held[1]

    # --- start-up -------------------------------------------------------------------------

    async def sync_config(self, now: datetime) -> None:
        """Config admins hold the admin role (and lose it when removed from the list).
        The config's working_group list becomes roles once; after that /invite and /revoke
        manage the working group."""
        at = to_db(now)
        admins, wg = set(self.settings.admins), tuple(self.settings.working_group)

        def sync(c: Conn) -> None:
            current = {r[0] for r in c.execute(
                "SELECT tg_id FROM grants WHERE role = 'admin' AND source = 'config'"
                " AND revoked_at IS NULL")}
            for tg_id in sorted(admins - current):
                _grant(c, tg_id, "admin", None, "config", None, at)
            for tg_id in sorted(current - admins):
                ids = [r[0] for r in c.execute(
                    "SELECT id FROM grants WHERE tg_id = ? AND role = 'admin' AND source = 'config'"
                    " AND revoked_at IS NULL", (tg_id,))]
                c.execute("UPDATE grants SET revoked_at = ? WHERE id IN"
                          f" ({','.join('?' * len(ids))})", (at, *ids))
                audit.record_rows(c, at, "revoke", "grants", ids)
            if c.execute("SELECT 1 FROM settings_kv WHERE key = ?", (_WG_MIGRATED,)).fetchone() is None:
                for tg_id in wg:
                    _grant(c, tg_id, "working_group", None, "config", None, at)
                c.execute("INSERT INTO settings_kv(key, value) VALUES(?, ?)", (_WG_MIGRATED, at))

        async with self.db.transaction() as conn:
            conn.call(sync)
        self._grants_changed()

    # --- reads ----------------------------------------------------------------------------

    async def grants(self, tg_id: int) -> list[Grant]:
        return (await self._lookup(tg_id))[0]

    async def global_roles(self, tg_id: int) -> frozenset[Role]:
        return frozenset(g.role for g in await self.grants(tg_id) if g.role in GLOBAL_ROLES)

    async def is_registered(self, tg_id: int) -> bool:
        return (await self._lookup(tg_id))[1]

    async def unit_scope(self, tg_id: int) -> set[int] | None:
        """Units whose cases the person may read: None means all (admin, working group)."""
        scope: set[int] = set()
        for g in await self.grants(tg_id):
            if g.role in GLOBAL_ROLES:
                return None
            if g.unit_id is None:
                continue
            if g.role is Role.SUPERVISOR:
                scope |= self.units.subtree(g.unit_id)
            else:
                scope.add(g.unit_id)
        return scope

    async def has_private_chat(self, tg_id: int) -> bool:
        row = await self.db.one(
            "SELECT p.private_chat = 1 AND NOT EXISTS (SELECT 1 FROM unreachable_chats u"
            " WHERE u.chat_id = p.tg_id) FROM people p WHERE p.tg_id = ?", (tg_id,))
        return bool(row and row[0])

    async def holders(self, role: Role, unit_id: int | None = None) -> list[int]:
        """Telegram ids of the people holding a role (in a unit)."""
        rows = await self.db.all(
            "SELECT DISTINCT tg_id FROM grants WHERE role = ? AND IFNULL(unit_id, 0) = ?"
            " AND revoked_at IS NULL ORDER BY tg_id", (role, unit_id or 0))
        return [int(r[0]) for r in rows]

    # --- who may manage whom ----------------------------------------------------------------

    async def _may_manage(self, actor_id: int, role: Role, unit: Unit | None) -> bool:
        for g in await self.grants(actor_id):
            rule = INVITES.get(g.role)
            if rule is None or role not in rule[0]:
                continue
            if rule[1] == "any":
                return True
            if unit is not None and g.unit_id is not None and unit.id in self.units.subtree(g.unit_id):
                return True
        return False

    async def _target(self, role_text: str, unit_key: str | None) -> tuple[Role, Unit | None]:
        try:
            role = Role(role_text.lower())
        except ValueError:
            raise Invalid(_("“{role}” is not a role: use one of {roles}.").format(
                role=excerpt(role_text), roles=", ".join(r.value for r in Role))) from None
        if role in GLOBAL_ROLES:
            return role, None
        if unit_key is None or unit_key == "-":
            raise Invalid(_("A {role} belongs to a unit: name it.").format(role=role.value))
        unit = await self.units.by_key(unit_key)
        if role is Role.LIAISON and unit.kind != "external":
            raise Invalid(_("Liaisons belong to another institution (a unit of kind external)."))
        if role is not Role.LIAISON and unit.kind == "external":
            raise Invalid(_("{unit} is another institution: invite a liaison there.").format(
                unit=html.escape(unit.name)))
        return role, unit

    # --- invitations ------------------------------------------------------------------------

    async def invite(self, actor_id: int, unit_key: str, role_text: str, now: datetime) -> str:
        """Create a single-use invitation; returns the token (only its hash is stored)."""
        role, unit = await self._target(role_text, unit_key)
        if not await self._may_manage(actor_id, role, unit):
            raise Forbidden()
        token = secrets.token_urlsafe(24)
        expires = now + timedelta(hours=self.settings.invitation_hours)
        values = (token_hash(token), role, unit.id if unit else None, actor_id, to_db(now),
                  to_db(expires))

        def create(c: Conn) -> None:
            cur = c.execute(
                "INSERT INTO invitations(token_hash, role, unit_id, created_by, created_at,"
                " expires_at) VALUES(?,?,?,?,?,?)", values)
            audit.record_rows(c, values[4], "invite", "invitations", [cur.lastrowid])

        async with self.db.transaction() as conn:
            conn.call(create)
        return token

    async def redeem(
        self, token: str, tg_id: int, name: str, username: str | None, language: str | None,
        now: datetime,
    ) -> Grant:
        """Register the person with the invitation's role, or raise InvitationProblem."""
        if not TOKEN_RE.match(token):
            raise InvitationProblem(_("This invitation link is not valid. Ask for a new one."))
        async with self.db.transaction() as conn:
            inv = await conn.one(
                "SELECT i.*, u.active = 1 AS unit_active FROM invitations i"
                " LEFT JOIN units u ON u.id = i.unit_id WHERE token_hash = ?",
                (token_hash(token),))
            if inv is None:
                raise InvitationProblem(_("This invitation link is not valid. Ask for a new one."))
            if inv["used_at"] is not None:
                raise InvitationProblem(_("This invitation link has already been used."))
            if inv["revoked_at"] is not None:
                raise InvitationProblem(_("This invitation link was withdrawn. Ask for a new one."))
            expires = from_db(inv["expires_at"])
            if expires is not None and expires <= now:
                raise InvitationProblem(_("This invitation link has expired. Ask for a new one."))
            if inv["unit_id"] is not None and not inv["unit_active"]:
                raise InvitationProblem(_("The unit of this invitation no longer exists."))
            conn.add(
                "INSERT INTO people(tg_id, name, username, language, first_seen, last_seen,"
                " private_chat) VALUES(?,?,?,?,?,?,1) ON CONFLICT(tg_id) DO UPDATE SET"
                " name=excluded.name, username=excluded.username, language=excluded.language,"
                " last_seen=excluded.last_seen, private_chat=1",
                (tg_id, name, username, language, to_db(now), to_db(now)))
            at, role, unit_id, by, inv_id = (to_db(now), inv["role"], inv["unit_id"],
                                              inv["created_by"], inv["id"])

            def use(c: Conn) -> None:
                _grant(c, tg_id, role, unit_id, "invitation", by, at)
                c.execute("UPDATE invitations SET used_by = ?, used_at = ? WHERE id = ?",
                          (tg_id, at, inv_id))
                audit.record_rows(c, at, "invitation_used", "invitations", [inv_id])

            conn.call(use)
        self._grants_changed()
        grants = await self.grants(tg_id)
        return next(g for g in grants if g.role == inv["role"] and g.unit_id == inv["unit_id"])

    async def pending_invitations(self, actor_id: int, now: datetime) -> list[Invitation]:
        if not await self._may_invite_anything(actor_id):
            raise Forbidden()
        admin = Role.ADMIN in await self.global_roles(actor_id)
        rows = await self.db.all(
            "SELECT i.id, i.role, u.name AS unit_name, i.created_by, i.expires_at FROM invitations i"
            " LEFT JOIN units u ON u.id = i.unit_id WHERE i.used_at IS NULL AND i.revoked_at IS NULL"
            " AND i.expires_at > ? AND (? OR i.created_by = ?) ORDER BY i.id",
            (to_db(now), admin, actor_id))
        return [Invitation(r[0], Role(r[1]), r[2], r[3], from_db(r[4]) or now) for r in rows]

    async def _may_invite_anything(self, actor_id: int) -> bool:
        return any(g.role in INVITES for g in await self.grants(actor_id))

    async def withdraw_invitation(self, actor_id: int, invitation_id: int, now: datetime) -> None:
        admin = Role.ADMIN in await self.global_roles(actor_id)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE invitations SET revoked_by = ?, revoked_at = ? WHERE id = ?"
                " AND used_at IS NULL AND revoked_at IS NULL AND (? OR created_by = ?)",
                (actor_id, to_db(now), invitation_id, admin, actor_id))
            if cur.rowcount == 0:
                raise Invalid(_("That invitation is no longer pending."))
            conn.call(lambda c: audit.record_rows(c, to_db(now), "invitation_withdrawn",
                                                  "invitations", [invitation_id]))

    # --- people and revocation -----------------------------------------------------------------

    async def find(self, who: str) -> Person:
        """A registered person by @username or Telegram id."""
        ref = parse_person(who)
        if isinstance(ref, int):
            row = await self.db.one("SELECT tg_id, name, username FROM people WHERE tg_id = ?", (ref,))
        elif ref is not None:
            row = await self.db.one(
                "SELECT tg_id, name, username FROM people WHERE username = ? COLLATE NOCASE", (ref,))
        else:
            row = None
        if row is None:
            raise PersonNotFound(who)
        return Person(row[0], row[1], row[2], tuple(await self.grants(row[0])))

    async def people(self, actor_id: int, unit_key: str | None) -> list[Person]:
        """Registered people (in a unit, or in the actor's scope) with their roles."""
        grants = await self.grants(actor_id)
        if not any(g.role in SEES_PEOPLE for g in grants):
            raise Forbidden()
        scope = await self.unit_scope(actor_id)
        unit_ids: set[int] | None = scope
        if unit_key is not None:
            unit = await self.units.by_key(unit_key)
            if scope is not None and unit.id not in scope:
                raise Forbidden()
            unit_ids = {unit.id}
        rows = await self.db.all(
            _GRANT_SELECT.replace("SELECT g.id", "SELECT p.name, p.username, g.id")
            .replace("FROM grants g", "FROM grants g LEFT JOIN people p ON p.tg_id = g.tg_id")
            + " ORDER BY p.name, g.tg_id, g.id")
        people: dict[int, tuple[str, str | None, list[Grant]]] = {}
        for r in rows:
            g = _grant_of(r)
            if unit_ids is not None and g.unit_id not in unit_ids:
                continue
            entry = people.setdefault(g.tg_id, (r["name"] or str(g.tg_id), r["username"], []))
            entry[2].append(g)
        return [Person(tg, name, user, tuple(gs)) for tg, (name, user, gs) in people.items()]

    async def revoke(
        self, actor_id: int, who: str, unit_key: str | None, role_text: str | None, now: datetime,
    ) -> list[Grant]:
        """Remove the matching active grants the actor may manage. Returns what was removed."""
        person = await self.find(who)
        unit = await self.units.by_key(unit_key) if unit_key and unit_key != "-" else None
        role = None
        if role_text is not None:
            try:
                role = Role(role_text.lower())
            except ValueError:
                raise Invalid(_("“{role}” is not a role: use one of {roles}.").format(
                    role=excerpt(role_text), roles=", ".join(r.value for r in Role))) from None
        targets = [g for g in person.grants
                   if (unit is None or g.unit_id == unit.id) and (role is None or g.role is role)]
        allowed = []
        for g in targets:
            g_unit = await self.units.by_id(g.unit_id) if g.unit_id is not None else None
            if await self._may_manage(actor_id, g.role, g_unit):
                allowed.append(g)
        if not targets:
            raise Invalid(_("{who} holds no such role.").format(who=html.escape(person.name)))
        if not allowed:
            raise Forbidden()
        async with self.db.transaction() as conn:
            for g in allowed:
                conn.add(
                    "UPDATE grants SET revoked_by = ?, revoked_at = ? WHERE id = ?",
                    (actor_id, to_db(now), g.id))
            ids = [g.id for g in allowed]
            conn.call(lambda c: audit.record_rows(c, to_db(now), "revoke", "grants", ids))
        self._grants_changed()
        return allowed

    # --- refusals -----------------------------------------------------------------------------

    async def log_refusal(
        self, tg_id: int, action: str, case_id: int | None, chat_id: int | None, now: datetime
    ) -> None:
        async with self.db.transaction() as conn:
            conn.add(
                "INSERT INTO refusals(at, tg_id, action, case_id, chat_id) VALUES(?,?,?,?,?)",
                (to_db(now), tg_id, action, case_id, chat_id))

    async def refusals(self, actor_id: int, limit: int = 20) -> list[Row]:
        if Role.ADMIN not in await self.global_roles(actor_id):
            raise Forbidden()
        return await self.db.all(
            "SELECT r.at, r.tg_id, p.name, r.action, r.case_id FROM refusals r"
            " LEFT JOIN people p ON p.tg_id = r.tg_id ORDER BY r.id DESC LIMIT ?", (limit,))
