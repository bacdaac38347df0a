"""Units (the tree of departments, provinces, districts, institutions), their chats, and people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot import audit
from bot.bounded import LRUDict
from bot.config import Settings
from bot.db import Conn, Database, Row, to_db
from bot.domain.errors import Forbidden, Invalid, UnitNotFound
from bot.i18n import SUPPORTED, _, current_locale, normalize
from bot.inputs import parse_person

WORKGROUP_KEY = "workgroup"  # /bindchat workgroup binds the working group's own chat
_WG_CHAT = audit.WG_CHAT_SETTING

_UNIT_SELECT = """
SELECT u.id, u.key, u.name, u.name_km, u.kind, u.parent_id, u.config_chat_id, u.ack_days,
       b.chat_id AS bound_chat_id,
       (SELECT COUNT(*) FROM units c WHERE c.parent_id = u.id AND c.active = 1) AS n_children
FROM units u LEFT JOIN chat_bindings b ON b.unit_id = u.id
"""


@dataclass(frozen=True)
class Unit:
    id: int
    key: str
    name_en: str
    kind: str
    parent_id: int | None
    chat_id: int | None      # effective chat: the bound one wins over the config's
    bound: bool              # bound with /bindchat (rather than taken from the config)
    n_children: int
    ack_days: int | None = None
    name_km: str | None = None

    @property
    def name(self) -> str:
        """The name in the reader's language."""
        return localized(self.name_en, self.name_km)

    @classmethod
    def from_row(cls, r: Row) -> Unit:
        chat = r["bound_chat_id"] if r["bound_chat_id"] is not None else r["config_chat_id"]
        return cls(
            r["id"], r["key"], r["name"], r["kind"], r["parent_id"], chat,
            r["bound_chat_id"] is not None, r["n_children"], r["ack_days"], r["name_km"],
        )


class _Snapshot:
    """The active units by id, by key and by chat (a bound chat wins over the config's), and
    the working group's bound chat."""

    def __init__(self, units: list[Unit], wg_chat_id: int | None) -> None:
        self.by_id = {u.id: u for u in units}
        self.by_key = {u.key.lower(): u for u in units}
        self.by_chat: dict[int, Unit] = {}
        for u in sorted(units, key=lambda u: (not u.bound, u.id)):
            if u.chat_id is not None:
                self.by_chat.setdefault(u.chat_id, u)  # bound ones first
        self.wg_chat_id = wg_chat_id


@dataclass(frozen=True)
class Category:
    id: int
    key: str
    name_en: str
    name_km: str | None = None

    @property
    def name(self) -> str:
        return localized(self.name_en, self.name_km)


def _bound_to(c: Conn, chat_id: int) -> list[int]:
    """The units whose bound chat this is."""
    return [r[0] for r in c.execute("SELECT unit_id FROM chat_bindings WHERE chat_id = ?", (chat_id,))]


def localized(en: str, km: str | None) -> str:
    return km if km and current_locale() == "km" else en


class UnitService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        # Per person and chat, so bounded (forgetting one costs a read or a write, never a wrong answer).
        self._languages: LRUDict[int, str] = LRUDict()
        self._seen: LRUDict[int, tuple[tuple[str, str | None, str | None], bool]] = LRUDict()
        self._parent: dict[int, int | None] = {}
        self._children: dict[int | None, list[int]] = {}
        self._units: _Snapshot | None = None  # the active units and their chats, in memory
        self.generation = 0  # moves on whenever units or their chats change

    def _changed(self) -> None:
        self._units = None
        self.generation += 1

    async def _snapshot(self) -> _Snapshot:
        """Units change only with the config and /bindchat, and every update asks for its chat's
        unit: they are read once and kept until one of those changes them."""
        snap = self._units
        if snap is None:
            generation = self.generation
            units = [Unit.from_row(r) for r in await self.db.all(_UNIT_SELECT + " WHERE u.active = 1")]
            wg = await self.db.one("SELECT value FROM settings_kv WHERE key = ?", (_WG_CHAT,))
            snap = _Snapshot(units, None if wg is None else int(wg["value"]))
            if self.generation == generation:  # not changed while it was read
                self._units = snap
        return snap

    async def sync_from_config(self) -> None:
        """Make the units and categories tables match the config (keys are stable)."""
        async with self.db.transaction() as conn:
            keys = [u.key for u in self.settings.units]
            conn.add_many(
                "INSERT INTO units(key, name, name_km, kind, config_chat_id, ack_days, active)"
                " VALUES(?,?,?,?,?,?,1) ON CONFLICT(key) DO UPDATE SET name=excluded.name,"
                " name_km=excluded.name_km, kind=excluded.kind,"
                " config_chat_id=excluded.config_chat_id, ack_days=excluded.ack_days, active=1",
                [(u.key, u.name, u.name_km, u.kind, u.chat_id, u.ack_days) for u in self.settings.units],
            )
            conn.add_many(
                "UPDATE units SET parent_id=(SELECT id FROM units WHERE key=?) WHERE key=?",
                [(u.parent, u.key) for u in self.settings.units],
            )
            marks = ",".join("?" * len(keys))
            conn.add(f"UPDATE units SET active=0 WHERE key NOT IN ({marks})", keys)
            cat_keys = [c.key for c in self.settings.categories]
            conn.add_many(
                "INSERT INTO categories(key, name, name_km, active) VALUES(?,?,?,1)"
                " ON CONFLICT(key) DO UPDATE SET name=excluded.name, name_km=excluded.name_km,"
                " active=1",
                [(c.key, c.name, c.name_km) for c in self.settings.categories],
            )
            marks = ",".join("?" * len(cat_keys))
            conn.add(
                f"UPDATE categories SET active=0 WHERE key NOT IN ({marks})", cat_keys
            )
        self._changed()
        await self.load_tree()

    # --- reads -------------------------------------------------------------------------

    async def all(self) -> list[Unit]:
        rows = await self.db.all(_UNIT_SELECT + " WHERE u.active = 1 ORDER BY u.id")
        return [Unit.from_row(r) for r in rows]

    async def by_key(self, key: str) -> Unit:
        unit = (await self._snapshot()).by_key.get(key.lower())
        if unit is None:
            raise UnitNotFound(key)
        return unit

    async def by_id(self, unit_id: int) -> Unit | None:
        return (await self._snapshot()).by_id.get(unit_id)

    async def institutions(self) -> list[Unit]:
        rows = await self.db.all(_UNIT_SELECT + " WHERE u.kind = 'external' AND u.active = 1 ORDER BY u.name")
        return [Unit.from_row(r) for r in rows]

    async def children(self, parent_id: int | None) -> list[Unit]:
        if parent_id is None:
            rows = await self.db.all(
                _UNIT_SELECT + " WHERE u.parent_id IS NULL AND u.active = 1 ORDER BY u.id"
            )
        else:
            rows = await self.db.all(
                _UNIT_SELECT + " WHERE u.parent_id = ? AND u.active = 1 ORDER BY u.id", (parent_id,)
            )
        return [Unit.from_row(r) for r in rows]

    async def unit_for_chat(self, chat_id: int) -> Unit | None:
        return (await self._snapshot()).by_chat.get(chat_id)

    async def categories(self) -> list[Category]:
        rows = await self.db.all("SELECT id, key, name, name_km FROM categories WHERE active = 1 ORDER BY id")
        return [Category(r["id"], r["key"], r["name"], r["name_km"]) for r in rows]

    async def category(self, category_id: int) -> Category | None:
        r = await self.db.one(
            "SELECT id, key, name, name_km FROM categories WHERE id = ? AND active = 1", (category_id,)
        )
        return None if r is None else Category(r["id"], r["key"], r["name"], r["name_km"])

    async def wg_chat_id(self) -> int | None:
        bound = (await self._snapshot()).wg_chat_id
        return bound if bound is not None else self.settings.working_group_chat_id

    # --- the tree (units change only with the config, so it is kept in memory) -----------

    async def load_tree(self) -> None:
        rows = await self.db.all("SELECT id, parent_id FROM units WHERE active = 1")
        self._parent = {r["id"]: r["parent_id"] for r in rows}
        self._children = {}
        for uid, parent in self._parent.items():
            self._children.setdefault(parent, []).append(uid)

    def ancestors_or_self(self, unit_id: int) -> list[int]:
        out: list[int] = []
        cur: int | None = unit_id
        while cur is not None and cur in self._parent and cur not in out:
            out.append(cur)
            cur = self._parent[cur]
        return out

    def subtree(self, unit_id: int) -> set[int]:
        """The unit and every unit below it."""
        out: set[int] = set()
        stack = [unit_id]
        while stack:
            uid = stack.pop()
            if uid not in out:
                out.add(uid)
                stack.extend(self._children.get(uid, []))
        return out

    # --- writes ------------------------------------------------------------------------

    async def bind_chat(
        self, key: str, chat_id: int, actor_id: int, is_admin: bool, now: datetime
    ) -> str:
        """Bind a group to a unit (or to the working group). Returns the bound name."""
        if not is_admin:
            raise Forbidden()
        if chat_id > 0:
            raise Invalid(_("Send /bindchat in the unit's group, not in a private chat."))
        at = to_db(now)
        if key.lower() == WORKGROUP_KEY:
            def bind_workgroup(c: Conn) -> None:
                unbound = _bound_to(c, chat_id)
                c.execute("DELETE FROM chat_bindings WHERE chat_id = ?", (chat_id,))
                c.execute("DELETE FROM unreachable_chats WHERE chat_id = ?", (chat_id,))
                c.execute(
                    "INSERT INTO settings_kv(key, value) VALUES(?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (_WG_CHAT, str(chat_id)),
                )
                audit.record_rows(c, at, "unbind", "chat_bindings", unbound)
                audit.record_rows(c, at, "bind_workgroup", "settings_kv", [_WG_CHAT])

            async with self.db.transaction() as conn:
                conn.call(bind_workgroup)
            self._changed()
            return _("the working group")
        unit = await self.by_key(key)

        def bind(c: Conn) -> None:
            # A group serves one unit: binding it here unbinds it elsewhere.
            unbound = [u for u in _bound_to(c, chat_id) if u != unit.id]
            c.execute("DELETE FROM chat_bindings WHERE chat_id = ?", (chat_id,))
            c.execute(
                "INSERT INTO chat_bindings(unit_id, chat_id, bound_by, bound_at) VALUES(?,?,?,?)"
                " ON CONFLICT(unit_id) DO UPDATE SET chat_id=excluded.chat_id,"
                " bound_by=excluded.bound_by, bound_at=excluded.bound_at",
                (unit.id, chat_id, actor_id, at),
            )
            cur = c.execute("DELETE FROM settings_kv WHERE key = ? AND value = ?",
                            (_WG_CHAT, str(chat_id)))
            c.execute("DELETE FROM unreachable_chats WHERE chat_id = ?", (chat_id,))
            audit.record_rows(c, at, "unbind", "chat_bindings", unbound)
            audit.record_rows(c, at, "bind", "chat_bindings", [unit.id])
            if cur.rowcount:
                audit.record_rows(c, at, "unbind_workgroup", "settings_kv", [_WG_CHAT])

        async with self.db.transaction() as conn:
            conn.call(bind)
        self._changed()
        return unit.name

    async def seen(
        self, tg_id: int, name: str, username: str | None, language: str | None, now: datetime,
        *, private: bool = False,
    ) -> None:
        """Keep a registered person's name and username current (they change them), and note
        that they write to the bot privately (so reminders can go to them, and a chat that had
        blocked the bot is reachable again).

        Called for every update from a registered person, so it writes only when something
        changed. Nothing is stored about people the bot does not know."""
        who = (name, username, language)
        known = self._seen.get(tg_id)
        cached = known is not None and known[0] == who and (known[1] or not private)
        # Even when cached: a private chat that blocked the bot since is reachable again now.
        if cached and not (private and await self.db.one(
                "SELECT 1 FROM unreachable_chats WHERE chat_id = ?", (tg_id,))):
            return
        async with self.db.transaction() as conn:
            conn.add(
                "INSERT INTO people(tg_id, name, username, language, first_seen, last_seen,"
                " private_chat) VALUES(?,?,?,?,?,?,?) ON CONFLICT(tg_id) DO UPDATE SET"
                " name=excluded.name, username=excluded.username, language=excluded.language,"
                " last_seen=excluded.last_seen, private_chat=MAX(people.private_chat, excluded.private_chat)",
                (tg_id, name, username, language, to_db(now), to_db(now), int(private)),
            )
            if private:
                conn.add("DELETE FROM unreachable_chats WHERE chat_id = ?", (tg_id,))
        self._seen[tg_id] = (who, private or (known is not None and known[1]))
        self._languages.pop(tg_id, None)

    # --- languages: a person's (chosen, else their Telegram's), a group's, else the default -----

    async def language_of(self, chat_id: int) -> str:
        cached = self._languages.get(chat_id)
        if cached is not None:
            return cached
        if chat_id > 0:
            row = await self.db.one("SELECT lang, language FROM people WHERE tg_id = ?", (chat_id,))
            lang = (row[0] or normalize(row[1], self.settings.default_language)) if row else None
        else:
            row = await self.db.one("SELECT lang FROM chat_languages WHERE chat_id = ?", (chat_id,))
            lang = row[0] if row else None
        lang = lang or self.settings.default_language
        self._languages[chat_id] = lang
        return lang

    async def set_language(self, chat_id: int, lang: str) -> None:
        if lang not in SUPPORTED:
            raise Invalid(_("Choose km (Khmer) or en (English)."))
        async with self.db.transaction() as conn:
            if chat_id > 0:
                conn.add("UPDATE people SET lang = ? WHERE tg_id = ?", (lang, chat_id))
            else:
                conn.add(
                    "INSERT INTO chat_languages(chat_id, lang) VALUES(?, ?)"
                    " ON CONFLICT(chat_id) DO UPDATE SET lang = excluded.lang", (chat_id, lang))
        self._languages[chat_id] = lang

    async def find_person(self, who: str) -> tuple[int, str] | None:
        """A person by numeric id or @username, if the bot has seen them."""
        ref = parse_person(who)
        if ref is None:
            return None
        if isinstance(ref, int):
            row = await self.db.one("SELECT tg_id, name FROM people WHERE tg_id = ?", (ref,))
        else:
            row = await self.db.one(
                "SELECT tg_id, name FROM people WHERE username = ? COLLATE NOCASE", (ref,))
        return None if row is None else (row["tg_id"], row["name"])

    def tree_lines(self, units: list[Unit]) -> list[tuple[int, Unit]]:
        """(depth, unit) in tree order."""
        children: dict[int | None, list[Unit]] = {}
        for u in units:
            children.setdefault(u.parent_id, []).append(u)
        out: list[tuple[int, Unit]] = []

        def walk(parent: int | None, depth: int) -> None:
            for u in children.get(parent, []):
                out.append((depth, u))
                walk(u.id, depth + 1)

        walk(None, 0)
        return out
