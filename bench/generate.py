"""Synthetic casebot databases: N cases of a ministry with 25 provinces, 200 districts,
30 institutions, 2,000 officials and 12 categories.

The schema is the real one (``bot.db.Database.open`` runs the migrations); units and categories
come from the config through ``UnitService.sync_from_config``, the config's admins and working
group through ``PeopleService.sync_config``. The bulk (people, grants, cases, events, posted
cards, attachments, and the outbox of messages already sent, which the bot keeps) is then written
with ``executemany`` in one transaction, the secondary indexes dropped during the load and
rebuilt from their own ``CREATE INDEX`` text afterwards.
No ``ANALYZE`` is run: the query planner sees what a production database would show it.

Each case walks a route the domain allows (assign → accept → [need info → answer] → resolve →
verify; "not ours" and re-assignment; forward → acknowledge/decline → resolve/outcome → verify;
merge), one step after another with random, occasionally stalled, durations; it stops where
``NOW`` falls, so old cases are mostly closed (with a stale backlog) and recent ones open. Every
step is an event. Deadlines follow the domain's own ``DeadlinePolicy`` and ``ReminderPolicy``
(working days, holidays, quiet hours): ``next_action_at`` is the deadline of the current step;
overdue cases were reminded and escalated already (their next reminder is tomorrow), and exactly
``due_now`` of them (500 by default) have a reminder due at ``NOW``.

Databases are cached under bench/.data (or --data-dir) by size, seed, number due and a
fingerprint of the migrations, the config and ``GEN_VERSION``, so a schema change regenerates
them (bump ``GEN_VERSION`` when changing what is generated).

    python -m bench.generate --cases 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import itertools
import json
import math
import random
import shutil
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from bench import ministry
from bench.ministry import ADMIN, NOW, WORKING_GROUP
from bot import audit
from bot.config import Settings
from bot.db import Database, migrations
from bot.domain.cases import CaseService
from bot.domain.people import PeopleService
from bot.domain.rules import UNFINISHED_STATUSES
from bot.domain.units import UnitService

GEN_VERSION = 3
DATA_DIR = Path(__file__).resolve().parent / ".data"
DUE_NOW = 500
YEARS = 4            # intake over the last four years, growing (three times as much now as then)
GROWTH = 2.0
STALL = 0.04         # chance that a step stalls (weeks to a year) …
STUCK = 0.05         # … and that a case gets stuck for good at some step: the stale backlog
BATCH = 20_000
DAY = 86_400.0
HOUR = 3_600.0

CASE_COLUMNS = (
    "id", "status", "version", "source", "received_at", "created_at", "updated_at", "category_id",
    "place_unit_id", "unit_id", "summary", "description", "citizen_name", "citizen_contact",
    "priority", "assignee_id", "due_at", "resolved_at", "created_by", "outcome", "closed_at",
    "resolved_by", "reopen_count", "handoffs", "bouncing", "merged_into", "forward_channel",
    "their_reference", "accept_due_at", "paused_at", "next_action_at", "reminder_level", "snoozes",
)
# As stored: the free text apart (event_texts), the audit chain's columns computed on the way.
EVENT_COLUMNS = ("id", "case_id", "at", "actor_id", "actor_name", "action", "from_status",
                 "to_status", "data", "note_commit", "seq", "case_prev", "prev", "hash")
CARD_COLUMNS = ("case_id", "chat_id", "message_id", "unit_id", "posted_at")
OUTBOX_COLUMNS = ("created_at", "kind", "chat_id", "case_id", "text", "payload", "attempts",
                  "next_attempt_at", "sent_at", "sending_at", "message_id")
ATTACHMENT_COLUMNS = ("case_id", "kind", "file_id", "file_name", "purpose", "added_by", "added_at")
BULK_TABLES = ("people", "grants", "cases", "events", "case_cards", "attachments", "outbox")

FIRST_NAMES = ("Sok", "Dara", "Vanna", "Sophea", "Chenda", "Rith", "Bopha", "Pisey", "Kosal",
               "Sreymom", "Vibol", "Chantha", "Mony", "Rachana", "Sovann", "Thida", "Veasna",
               "Kunthea", "Samnang", "Navy", "Phalla", "Sothea", "Vuthy", "Leakhena")
LAST_NAMES = ("Chan", "Sok", "Kim", "Heng", "Lim", "Ouk", "Meas", "Prak", "Chea", "Keo", "Nhem",
              "Srey", "Tep", "Phan", "Mao", "Long", "Yim", "Seng", "Ly", "Touch", "Pen", "Hok")
SOURCES = (("facebook_comment", 30), ("facebook_message", 35), ("telegram", 10), ("phone", 10),
           ("walk_in", 6), ("letter", 5), ("other", 4))
SUMMARIES = {
    "land": ("Boundary dispute with a neighbour", "Land title not issued after two years",
             "Eviction notice without compensation"),
    "documents": ("ID card renewal delayed", "Birth certificate refused at the commune",
                  "Residence book not updated"),
    "public-services": ("Fees charged without a receipt", "Office closed during opening hours",
                        "Application lost by the office"),
    "security": ("Night-time gambling den in the village", "Thefts of motorbikes not investigated",
                 "Loud karaoke every night"),
    "health": ("Health centre without staff at night", "Medicine charged although free",
               "Ambulance did not come"),
    "education": ("Teacher absent for weeks", "Informal fees at the primary school",
                  "School roof collapsed"),
    "utilities": ("No water supply for ten days", "Electricity cut without notice",
                  "Water bill three times too high"),
    "roads": ("Road flooded every rainy season", "Bridge unsafe for trucks",
              "Road works abandoned half-way"),
    "environment": ("Factory discharges into the canal", "Illegal logging near the village",
                    "Garbage not collected for a month"),
    "social": ("Poverty card (IDPoor) refused", "Disability allowance not paid",
               "Pension payment stopped"),
    "conduct": ("Official asked for money", "Rude treatment at the district office",
                "Official absent from post"),
    "other": ("Request for a meeting with the governor", "Complaint about a market fee",
              "Question about a new regulation"),
}
SENTENCES = (
    "The citizen wrote on the minister's page and gave more details by phone.",
    "Neighbours confirm the problem has lasted for several months.",
    "The commune chief was informed but nothing has happened since.",
    "Photos of the site were sent with the message.",
    "The family asks for a visit by the district office.",
    "A similar request was made last year without an answer.",
    "The citizen is available on weekdays after 17:00.",
    "Several households in the village are affected.",
)
NEED_INFO = ("Please send the land title number.", "Which village exactly?",
             "Please send a copy of the ID card.", "Who at the commune was contacted?")
RESOLUTIONS = (
    "Visited the site with both families; the boundary was re-marked and signed.",
    "The document was issued and handed to the citizen at the district office.",
    "The fee was refunded and the official was warned in writing.",
    "Repair team sent; the supply was restored the same week.",
    "The case was explained to the citizen, who accepted the answer of the office.",
)
RETURNS = ("This village belongs to the neighbouring district.",
           "This is a matter for the provincial department.")
DECLINES = ("Not within our competence: please contact the province.",
            "The request concerns another ministry.")
FORWARD_NOTES = ("Competent institution for this matter.", "Technical question for the ministry.")
CHANNELS = ("letter", "phone", "email", "in_person")

# Routes a case can take: (action, mean duration of the step in hours).
UNIT_ROUTE = (("assign", 6), ("accept", 16), ("resolve", 8 * 24), ("verify", 3 * 24))
INFO_ROUTE = (("assign", 6), ("accept", 16), ("need_info", 3 * 24), ("provide_info", 36),
              ("resolve", 7 * 24), ("verify", 3 * 24))
RETURN_ROUTE = (("assign", 6), ("return", 24), ("assign", 8), ("accept", 16), ("resolve", 7 * 24),
                ("verify", 3 * 24))
FORWARD_ROUTE = (("forward", 12), ("acknowledge", 48), ("resolve", 10 * 24), ("verify", 3 * 24))
FORWARD_NOCHAT_ROUTE = (("forward", 12), ("outcome", 14 * 24), ("verify", 3 * 24))
DECLINE_ROUTE = (("forward", 12), ("decline", 72), ("forward", 12), ("acknowledge", 48),
                 ("resolve", 10 * 24), ("verify", 3 * 24))
BOUNCE_ROUTE = (("forward", 12), ("decline", 72), ("forward", 12), ("decline", 72), ("assign", 8),
                ("accept", 16), ("resolve", 8 * 24), ("verify", 3 * 24))
MERGE_ROUTE = (("merge", 24),)


def fingerprint() -> str:
    """Changes with the schema (the migrations), the ministry's config and GEN_VERSION (bump it
    when changing what this module writes)."""
    h = hashlib.sha256(str(GEN_VERSION).encode())
    for number, sql in migrations():
        h.update(f"{number}:{sql}".encode())
    h.update(json.dumps(ministry.config_dict("-"), sort_keys=True).encode())
    return h.hexdigest()[:10]


def cache_path(n: int, *, seed: int = 1, due_now: int = DUE_NOW, data_dir: Path = DATA_DIR) -> Path:
    return data_dir / f"cases-{n}-s{seed}-d{due_now}-{fingerprint()}.sqlite3"


def ensure(n: int, *, seed: int = 1, due_now: int = DUE_NOW, data_dir: Path = DATA_DIR,
           log: Callable[[str], None] = print) -> Path:
    """The cached database of ``n`` cases, generated first if missing (or out of date)."""
    path = cache_path(n, seed=seed, due_now=due_now, data_dir=data_dir)
    if path.exists() and path.with_suffix(".json").exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(f"cases-{n}-s{seed}-d{due_now}-*.sqlite3*"):
        stale.unlink()
    for stale in data_dir.glob(f"cases-{n}-s{seed}-d{due_now}-*.json"):
        stale.unlink()
    log(f"generating {n:,} cases into {path} …")
    meta = generate(path, n, seed=seed, due_now=due_now, log=log)
    log(f"generated {n:,} cases, {meta['events']:,} events in {meta['seconds']:.1f} s "
        f"({meta['bytes'] / 1e6:,.0f} MB)")
    return path


def meta_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
    return data


def working_copy(path: Path, directory: Path, name: str | None = None) -> Path:
    """A copy to write to (benchmarks that queue digests or press buttons change the data)."""
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / (name or path.name)
    for suffix in ("-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    shutil.copyfile(path, dest)
    return dest


def generate(path: Path, n: int, *, seed: int = 1, due_now: int = DUE_NOW,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write a new database of ``n`` cases at ``path`` (replaced if it exists)."""
    started = time.perf_counter()
    tmp = path.with_name(path.name + ".partial")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    settings = ministry.settings_for(tmp)
    asyncio.run(_schema_units_and_config_people(settings))
    con = sqlite3.connect(tmp, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")
        con.execute("PRAGMA temp_store=MEMORY")
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({','.join('?' * len(BULK_TABLES))})", BULK_TABLES).fetchall()
        con.execute("BEGIN")
        for name, _sql in indexes:
            con.execute(f'DROP INDEX "{name}"')
        sim = _Simulation(con, settings, n, random.Random(seed), log)
        sim.people()
        sim.cases()
        sim.mark_due(due_now)
        sim.close_chain()
        for _name, sql in indexes:
            con.execute(sql)
        con.execute("COMMIT")
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.replace(path)
    meta = {
        "cases": n, "seed": seed, "due_now": sim.due_marked, "events": sim.n_events,
        "outbox_sent": sim.n_outbox,
        "statuses": dict(sorted(sim.statuses.items())), "overdue": sim.n_overdue,
        "bouncing": sim.n_bouncing, "officials": sim.n_officials, "supervisors": sim.n_supervisors,
        "units": len(settings.units), "categories": len(settings.categories),
        "seconds": round(time.perf_counter() - started, 1), "bytes": path.stat().st_size,
        "fingerprint": fingerprint(), "now": NOW.isoformat(),
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


async def _schema_units_and_config_people(settings: Settings) -> None:
    db = await Database.open(settings.database_path)
    try:
        units = UnitService(db, settings)
        await units.sync_from_config()
        people = PeopleService(db, settings, units)
        await people.sync_config(NOW - timedelta(days=365 * YEARS))
    finally:
        await db.close()


def iso(ts: float) -> str:
    """As ``bot.db.to_db``: UTC, seconds, "+00:00"."""
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


class _Simulation:
    def __init__(self, con: sqlite3.Connection, settings: Settings, n: int, rng: random.Random,
                 log: Callable[[str], None]) -> None:
        self.con, self.settings, self.n, self.rng, self.log = con, settings, n, rng, log
        # The domain's own deadline and reminder rules (CaseService builds them from the config).
        rules = CaseService(cast(Any, None), settings, cast(Any, None), cast(Any, None), lambda: NOW)
        self.policy, self.reminders = rules.policy, rules.reminders
        self.now = NOW.timestamp()
        self.start = (NOW - timedelta(days=365 * YEARS)).timestamp()
        units = con.execute("SELECT id, key, name, kind, parent_id, config_chat_id FROM units").fetchall()
        self.unit = {r[0]: r for r in units}
        self.by_key = {r[1]: r[0] for r in units}
        self.ack_days = dict(con.execute("SELECT id, ack_days FROM units").fetchall())
        self.categories = con.execute("SELECT id, key FROM categories ORDER BY id").fetchall()
        self.provinces = [self.by_key[ministry.province_key(p)] for p in range(len(ministry.PROVINCES))]
        self.districts = {
            prov: [self.by_key[ministry.district_key(p, d)]
                   for d in range(ministry.DISTRICTS_PER_PROVINCE)]
            for p, prov in enumerate(self.provinces)}
        self.departments = [self.by_key[f"dep{i}"] for i in range(len(ministry.DEPARTMENTS))]
        self.institutions = [self.by_key[f"inst{i:02d}"] for i in range(len(ministry.INSTITUTIONS))]
        # Bigger provinces get more cases (Phnom Penh first).
        weights = [1 / (rank + 1) ** 0.7 for rank in range(len(self.provinces))]
        self.province_cum = list(itertools.accumulate(weights))
        self.source_cum = list(itertools.accumulate(w for _s, w in SOURCES))
        self.officials: dict[int, list[tuple[int, str]]] = {}
        self.supervisors: dict[int, list[tuple[int, str]]] = {}
        self.liaisons: dict[int, list[tuple[int, str]]] = {}
        self.wg = [(tg, self.name()) for tg in WORKING_GROUP]
        self.admin = (ADMIN, "Admin")
        self.msg_ids: dict[int, int] = {}
        # Every event and grant joins the audit chain, in the order written (bot/audit.py).
        seq, head = con.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        self.chain = audit.Chain(seq, head)
        self.event_id = con.execute("SELECT IFNULL(MAX(id), 0) FROM events").fetchone()[0]
        self.n_events = self.n_overdue = self.n_bouncing = self.n_outbox = 0
        self.n_officials = self.n_supervisors = 0
        self.statuses: Counter[str] = Counter()
        self.overdue_ids: list[int] = []
        self.scheduled_ids: list[int] = []
        self.due_marked = 0
        self.assign_json = {
            u: json.dumps({"unit": r[1], "unit_name": r[2], "from_unit": None}, ensure_ascii=False)
            for u, r in self.unit.items()}
        self.return_json = {
            u: json.dumps({"unit": r[1], "unit_name": r[2]}, ensure_ascii=False)
            for u, r in self.unit.items()}

    def name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    # --- people ------------------------------------------------------------------------------

    def people(self) -> None:
        """2,000 officials (seven per district, twenty per province, 25 per department),
        256 supervisors (one per district, two per province, one per department, two for the
        ministry), two liaisons per institution with a chat; the config's admin and working
        group get names."""
        rng, since = self.rng, iso(self.start)
        people: list[tuple[Any, ...]] = []
        grants: list[tuple[Any, ...]] = []

        def person(tg: int, name: str, role: str | None, unit: int | None) -> tuple[int, str]:
            language = "km" if rng.random() < 0.7 else "en"
            people.append((tg, name, f"user{tg}", language, since, since, int(rng.random() < 0.9)))
            if role is not None:
                grants.append((tg, role, unit, "invitation", ADMIN, since))
            return tg, name

        person(ADMIN, self.admin[1], None, None)
        for tg, name in self.wg:
            person(tg, name, None, None)
        official = itertools.count(ministry.FIRST_OFFICIAL)
        supervisor = itertools.count(ministry.FIRST_SUPERVISOR)
        liaison = itertools.count(ministry.FIRST_LIAISON)
        plan: list[tuple[int, int, int]] = [(self.by_key["moi"], 0, 2)]
        plan += [(d, 25, 1) for d in self.departments]
        for prov in self.provinces:
            plan.append((prov, 20, 2))
            plan += [(d, 7, 1) for d in self.districts[prov]]
        for unit, n_officials, n_supervisors in plan:
            self.officials[unit] = [person(next(official), self.name(), "official", unit)
                                    for _ in range(n_officials)]
            self.supervisors[unit] = [person(next(supervisor), self.name(), "supervisor", unit)
                                      for _ in range(n_supervisors)]
        for inst in self.institutions:
            if self.unit[inst][5] is not None:
                self.liaisons[inst] = [person(next(liaison), self.name(), "liaison", inst)
                                       for _ in range(2)]
        self.n_officials = sum(len(v) for v in self.officials.values())
        self.n_supervisors = sum(len(v) for v in self.supervisors.values())
        self.con.executemany(
            "INSERT INTO people(tg_id, name, username, language, first_seen, last_seen, private_chat)"
            " VALUES(?,?,?,?,?,?,?)", people)
        first = self.con.execute("SELECT IFNULL(MAX(id), 0) FROM grants").fetchone()[0]
        self.con.executemany(
            "INSERT INTO grants(tg_id, role, unit_id, source, granted_by, granted_at)"
            " VALUES(?,?,?,?,?,?)", grants)
        ids = [r[0] for r in self.con.execute("SELECT id FROM grants WHERE id > ? ORDER BY id", (first,))]
        audit.record_rows(self.con, since, "grant", "grants", ids, self.chain)

    # --- cases -------------------------------------------------------------------------------

    def created_at(self, i: int) -> float:
        """Intake grows linearly over the years: invert the cumulative share."""
        q = (i - 0.5) / self.n
        g = GROWTH
        x = (-1 + math.sqrt(1 + 2 * g * q * (1 + g / 2))) / g
        return self.start + x * (self.now - self.start)

    def cases(self) -> None:
        cases: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        cards: list[tuple[Any, ...]] = []
        files: list[tuple[Any, ...]] = []
        for cid in range(1, self.n + 1):
            self.case(cid, cases, events, cards, files)
            if len(cases) >= BATCH or cid == self.n:
                self.flush(cases, events, cards, files)
                if cid % 200_000 == 0:
                    self.log(f"  … {cid:,} cases")

    def chained(self, events: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The events as stored, in the audit chain, and their free texts (event_texts rows)."""
        rows, texts = [], []
        for cid, at, actor_id, name, action, before, after, note, data in events:
            self.event_id += 1
            values, text = self.chain.event(cid, at, actor_id, name, action, before, after, note, data)
            rows.append((self.event_id, cid, at, actor_id, name, action, before, after, data, *values))
            if text is not None:
                texts.append((self.event_id, *text))
        self.chain.case_heads.clear()  # a case's events are all in one batch
        return rows, texts

    def close_chain(self) -> None:
        if self.chain.seq > self.con.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()[0]:
            audit.set_head(self.con, self.chain)

    def flush(self, cases: list[tuple[Any, ...]], events: list[tuple[Any, ...]],
              cards: list[tuple[Any, ...]], files: list[tuple[Any, ...]]) -> None:
        stored, texts = self.chained(events)
        for table, columns, rows in (("cases", CASE_COLUMNS, cases), ("events", EVENT_COLUMNS, stored),
                                     ("case_cards", CARD_COLUMNS, cards),
                                     ("attachments", ATTACHMENT_COLUMNS, files)):
            if rows:
                self.con.executemany(
                    f"INSERT INTO {table}({','.join(columns)}) VALUES({','.join('?' * len(columns))})",
                    rows)
        self.con.executemany("INSERT INTO event_texts(event_id, salt, text) VALUES(?,?,?)", texts)
        self.con.executemany(
            f"INSERT INTO outbox({','.join(OUTBOX_COLUMNS)}) VALUES({','.join('?' * len(OUTBOX_COLUMNS))})",
            self.delivered(events, cards))
        self.n_events += len(events)
        for rows in (cases, events, cards, files):
            rows.clear()

    def delivered(self, events: list[tuple[Any, ...]],
                  cards: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The outbox as the sender leaves it: every message sent (the table keeps them all).
        Each change refreshed the case's cards and told the working group; each assignment or
        forward posted a card; reminders and escalations were texts."""
        out: list[tuple[Any, ...]] = []
        wg = ministry.WG_CHAT
        mid = self.msg_ids.get(wg, 0)
        for cid, at, _actor, name, action, *_rest in events:
            if action not in ("create", "remind", "escalate"):
                out.append((at, "refresh", None, cid, "", "{}", 1, at, at, at, None))
            mid += 1
            out.append((at, "text", wg, cid, f"#{cid} · {action} by {name}", "{}", 1, at, at, at, mid))
        self.msg_ids[wg] = mid
        for cid, chat, message_id, unit, at in cards:
            out.append((at, "card", chat, cid, "", f'{{"unit_id": {unit}}}', 1, at, at, at, message_id))
        self.n_outbox += len(out)
        return out

    def route(self, cid: int, inst_has_chat: bool) -> tuple[tuple[str, int], ...]:
        r = self.rng.random()
        if r < 0.02 and cid > 10:
            return MERGE_ROUTE
        if r < 0.10:
            if not inst_has_chat:
                return FORWARD_NOCHAT_ROUTE
            r2 = self.rng.random()
            return BOUNCE_ROUTE if r2 < 0.06 else DECLINE_ROUTE if r2 < 0.25 else FORWARD_ROUTE
        if r < 0.16:
            return RETURN_ROUTE
        return INFO_ROUTE if r < 0.26 else UNIT_ROUTE

    def card(self, cid: int, unit: int, t: float, cards: list[tuple[Any, ...]]) -> None:
        chat = self.unit[unit][5]
        if chat is not None:
            mid = self.msg_ids.get(chat, 0) + 1
            self.msg_ids[chat] = mid
            cards.append((cid, chat, mid, unit, iso(t)))

    def case(self, cid: int, cases: list[tuple[Any, ...]], events: list[tuple[Any, ...]],
             cards: list[tuple[Any, ...]], files: list[tuple[Any, ...]]) -> None:
        rng, now = self.rng, self.now
        created = self.created_at(cid)
        source = SOURCES[bisect.bisect(self.source_cum, rng.random() * self.source_cum[-1])][0]
        received = created - (rng.random() * 3 * DAY if source not in ("phone", "walk_in") else 0)
        cat_id, cat_key = rng.choice(self.categories)
        province = self.provinces[bisect.bisect(self.province_cum, rng.random() * self.province_cum[-1])]
        place = province if rng.random() < 0.12 else rng.choice(self.districts[province])
        priority = "urgent" if rng.random() < 0.07 else "normal"
        inst = rng.choice(self.institutions)
        inst_chat = self.unit[inst][5] is not None
        creator = rng.choice(self.wg)
        status, unit, assignee = "new", None, None
        version, handoffs, bouncing = 1, 0, 0
        channel = reference = resolved_at = resolved_by = closed_at = outcome = merged_into = None
        paused = None
        shift = 0.0
        anchor: tuple[str, float] | None = None
        accept_from: float | None = None
        t = created
        events.append((cid, iso(t), creator[0], creator[1], "create", None, "new", "",
                       f'{{"source": "{source}"}}'))
        if rng.random() < 0.12:
            files.append((cid, "photo", f"AgACAgUAAx{cid:08x}", None, "intake", creator[0], iso(t)))
        route = self.route(cid, inst_chat)
        stuck = rng.randrange(len(route)) if rng.random() < STUCK else -1
        for i, (action, mean) in enumerate(route):
            step = rng.expovariate(1 / (mean * HOUR))
            if rng.random() < STALL:
                step *= rng.uniform(10, 150)
            if t + step > now or i == stuck:
                break
            t += step
            before = status
            note, data = "", "{}"
            if action == "assign":
                if route is RETURN_ROUTE and handoffs == 0:
                    target = self.neighbour(place)  # it will come back as "not ours"
                elif handoffs:
                    target = place  # after "not ours" or declines: the right unit
                else:
                    target = self.assign_target(place)
                unit, assignee, status, paused, shift = target, None, "assigned", None, 0.0
                anchor, accept_from = ("resolve", t), t
                actor = rng.choice(self.wg)
                data = self.assign_json[target]
                self.card(cid, target, t, cards)
            elif action == "accept":
                assert unit is not None
                actor = rng.choice(self.officials[unit])
                assignee, status, accept_from = actor[0], "in_progress", None
            elif action == "need_info":
                assert unit is not None
                actor = rng.choice(self.officials[unit])
                status, paused, note = "waiting_info", t, rng.choice(NEED_INFO)
            elif action == "provide_info":
                actor = rng.choice(self.wg)
                status, note = "in_progress", "The citizen sent the details; see the attachment."
                if paused is not None:
                    shift += t - paused
                    data = json.dumps({"paused_hours": round((t - paused) / HOUR, 1)})
                paused = None
            elif action == "return":
                assert unit is not None
                actor = rng.choice(self.officials[unit])
                data = self.return_json[unit]
                status, unit, assignee, anchor, accept_from, paused = "new", None, None, None, None, None
                note = rng.choice(RETURNS)
                handoffs += 1
            elif action == "forward":
                actor = rng.choice(self.wg)
                if handoffs:  # declined: another institution (one with a chat: the route goes on there)
                    inst = rng.choice([i for i in self.liaisons if i != inst] or list(self.liaisons))
                channel = "telegram" if inst_chat else rng.choice(CHANNELS)
                data = json.dumps({"unit": self.unit[inst][1], "unit_name": self.unit[inst][2],
                                   "channel": channel, "from_unit": None}, ensure_ascii=False)
                status, unit, assignee, accept_from, reference = "forwarded", inst, None, None, None
                anchor, note = ("ack", t), rng.choice(FORWARD_NOTES)
                handoffs += 1
                self.card(cid, inst, t, cards)
            elif action == "acknowledge":
                actor = rng.choice(self.liaisons[inst])
                status, anchor = "acknowledged", ("resolve", t)
                if rng.random() < 0.6:
                    reference = f"{self.unit[inst][1].upper()}-{cid}"
                    data = json.dumps({"reference": reference})
            elif action == "decline":
                actor = rng.choice(self.liaisons.get(inst) or [self.admin])
                data = self.return_json[inst]
                status, unit, anchor, note = "new", None, None, rng.choice(DECLINES)
                handoffs += 1
            elif action in ("resolve", "outcome"):
                assert unit is not None
                if action == "outcome":
                    actor = rng.choice(self.wg)
                elif unit in self.liaisons:
                    actor = rng.choice(self.liaisons[unit])
                else:
                    actor = rng.choice(self.officials[unit])
                status, resolved_at, resolved_by = "resolved", t, actor[0]
                paused, accept_from, anchor, note = None, None, ("verify", t), rng.choice(RESOLUTIONS)
                if rng.random() < 0.3:
                    files.append((cid, "photo", f"AgACAgUAAx{cid:08x}e", None, "evidence", actor[0],
                                  iso(t)))
                    data = '{"attachments": 1}'
            elif action == "verify":
                home = unit if unit in self.supervisors else province
                sups = self.supervisors.get(home) or self.supervisors[province]
                actor = rng.choice(sups) if rng.random() < 0.3 else rng.choice(self.wg)
                outcome = "confirmed" if rng.random() < 0.8 else "unreachable"
                status, closed_at, anchor, data = "closed", t, None, f'{{"outcome": "{outcome}"}}'
            elif action == "merge":
                actor = rng.choice(self.wg)
                merged_into = rng.randrange(1, cid)
                status, closed_at, outcome, anchor = "merged", t, "merged", None
                data = f'{{"into": {merged_into}}}'
            else:  # pragma: no cover - a route names an unknown step
                raise ValueError(action)
            if action in ("return", "forward", "decline") and handoffs >= 3 and not bouncing:
                bouncing = 1
                data = data[:-1] + (', ' if data != "{}" else "") + '"bouncing": true}'
            version += 1
            events.append((cid, iso(t), actor[0], actor[1], action, before, status, note, data))
        updated = t
        due_at = accept_due = next_action = paused_at = None
        level = 0
        if status in UNFINISHED_STATUSES:
            due, deadline, step_name = self.deadlines(status, anchor, accept_from, shift, priority,
                                                       cat_key, unit)
            due_at = None if due is None else iso(due.timestamp())
            if status == "assigned" and accept_from is not None:
                accept_due = iso(self.policy.accept_due(_dt(accept_from)).timestamp())
            if paused is not None:
                paused_at = iso(paused)
            if deadline is not None:
                level, next_action = self.ladder(cid, deadline, step_name, events)
        self.statuses[status] += 1
        self.n_bouncing += bouncing
        summary = rng.choice(SUMMARIES.get(cat_key, SUMMARIES["other"]))
        description = " ".join(rng.sample(SENTENCES, rng.randint(1, 4)))
        cases.append((
            cid, status, version, source, iso(received), iso(created), iso(updated), cat_id, place,
            unit, summary, description, self.name(),
            f"0{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
            priority, assignee, due_at, None if resolved_at is None else iso(resolved_at),
            creator[0], outcome, None if closed_at is None else iso(closed_at), resolved_by, 0,
            handoffs, bouncing, merged_into, channel, reference, accept_due, paused_at, next_action,
            level, 0,
        ))

    def assign_target(self, place: int) -> int:
        """Mostly the place itself; sometimes its province or a department of the ministry."""
        rng = self.rng
        parent = self.unit[place][4]
        r = rng.random()
        if r < 0.05:
            return rng.choice(self.departments)
        if self.unit[place][3] == "district" and r < 0.20 and parent is not None:
            return int(parent)
        return place

    def neighbour(self, place: int) -> int:
        """Another district of the same province (or of a random one)."""
        parent = self.unit[place][4]
        choices = [d for d in self.districts.get(parent, []) if d != place] if parent else []
        return self.rng.choice(choices or self.districts[self.rng.choice(self.provinces)])

    def deadlines(self, status: str, anchor: tuple[str, float] | None, accept_from: float | None,
                  shift: float, priority: str, cat_key: str, unit: int | None,
                  ) -> tuple[datetime | None, datetime | None, str]:
        """The due date the domain would have set, and the deadline reminders chase (as
        ``CaseService._deadline``)."""
        policy = self.policy
        due: datetime | None = None
        if anchor is not None:
            kind, at = anchor
            start = _dt(at)
            if kind == "resolve":
                due = policy.resolve_due(start, priority, cat_key) + timedelta(seconds=shift)
            elif kind == "ack":
                due = policy.ack_due(start, self.ack_days.get(unit) if unit else None)
            else:
                due = policy.verify_due(start)
        if status == "assigned" and accept_from is not None:
            return due, policy.accept_due(_dt(accept_from)), "accept"
        if status in ("assigned", "in_progress", "forwarded", "acknowledged", "resolved"):
            name = {"forwarded": "acknowledge", "resolved": "verify"}.get(status, "resolve")
            return due, due, name
        return due, None, ""  # new, waiting_info

    def ladder(self, cid: int, deadline: datetime, step_name: str,
               events: list[tuple[Any, ...]]) -> tuple[int, str]:
        """Reminder level and next_action_at; overdue cases were reminded (and escalated)."""
        rem, rng = self.reminders, self.rng
        if deadline.timestamp() > self.now:
            self.scheduled_ids.append(cid)
            return 0, iso(rem.next_allowed(deadline).timestamp())
        self.n_overdue += 1
        self.overdue_ids.append(cid)
        overdue = NOW - deadline
        first = rem.next_allowed(deadline)
        level = 0
        if first <= NOW:
            level = 1
            events.append((cid, iso(first.timestamp()), 0, "casebot", "remind", None, None, "",
                           json.dumps({"step": step_name, "overdue_days": (first - deadline).days})))
            for lvl, days in ((2, rem.escalate_after_days), (3, rem.escalate_again_after_days)):
                if overdue.days >= days:
                    at = rem.next_allowed(deadline + timedelta(days=days))
                    if at <= NOW:
                        level = lvl
                        events.append((cid, iso(at.timestamp()), 0, "casebot", "escalate", None, None,
                                       "", f'{{"level": {lvl}}}'))
        later = rem.next_allowed(NOW + timedelta(seconds=rng.uniform(HOUR, 23 * HOUR)))
        return level, iso(later.timestamp())

    def mark_due(self, due_now: int) -> None:
        """Exactly ``due_now`` reminders due at NOW: overdue cases whose daily reminder is due
        (topped up with scheduled ones only when a tiny database has too few)."""
        rng = self.rng
        pick = rng.sample(self.overdue_ids, min(due_now, len(self.overdue_ids)))
        if len(pick) < due_now:
            pick += rng.sample(self.scheduled_ids, min(due_now - len(pick), len(self.scheduled_ids)))
        self.con.executemany(
            "UPDATE cases SET next_action_at = ? WHERE id = ?",
            [(iso(self.now - rng.uniform(1, 6 * HOUR)), cid) for cid in pick])
        self.due_marked = len(pick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, action="append",
                        help="how many cases (repeat for several databases); default 10k, 100k, 1M")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--due-now", type=int, default=DUE_NOW)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = parser.parse_args(argv)
    for n in args.cases or [10_000, 100_000, 1_000_000]:
        if args.force:
            cache_path(n, seed=args.seed, due_now=args.due_now, data_dir=args.data_dir).unlink(
                missing_ok=True)
        path = ensure(n, seed=args.seed, due_now=args.due_now, data_dir=args.data_dir)
        print(path)
        print(json.dumps(meta_of(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
