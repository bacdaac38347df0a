"""Shared fixtures: a settings object, a temporary SQLite file, domain services, a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from bot.config import Settings, parse_settings
from bot.db import Database
from bot.domain.cases import Actor, CaseService, Draft
from bot.domain.outbox import OutboxStore
from bot.domain.people import PeopleService
from bot.domain.units import UnitService
from tests import pgtest

# Property tests (hypothesis): few examples, the same ones on every run (derandomize: a seed from
# the test itself), no time limit per example (the end-to-end ones wait for the bot), and no
# example database written into the work tree.
hypothesis_settings.register_profile("casebot", max_examples=60, deadline=None, derandomize=True,
                                     database=None)
hypothesis_settings.load_profile("casebot")

ADMIN = 1001
WG = 1002
OFFICIAL = 2001
OTHER_OFFICIAL = 2002
STRANGER = 3001
SUPERVISOR = 4001   # supervisor of Phnom Penh (and so of its districts)
LIAISON = 5001      # liaison of the Ministry of Land
WG_CHAT = -100900
PP_CHAT = -100100   # Phnom Penh province
DP_CHAT = -100101   # Daun Penh district
SR_CHAT = -100200   # Siem Reap


def database_table(db_path: Path) -> dict[str, Any]:
    """The config's [database]: the SQLite file, or in the PostgreSQL run the schema standing
    for it (tests/pgtest.py)."""
    if pgtest.enabled():
        return {"url": pgtest.url_for(db_path), "path": str(db_path)}
    return {"path": str(db_path)}


def config_dict(db_path: Path) -> dict[str, Any]:
    return {
        "timezone": "Asia/Phnom_Penh",
        "default_language": "en",
        "admins": [ADMIN],
        "working_group": [WG],
        "working_group_chat_id": WG_CHAT,
        "database": database_table(db_path),
        "categories": [
            {"key": "land", "name": "Land dispute"},
            {"key": "docs", "name": "Civil documents"},
        ],
        "units": [
            {"key": "moi", "name": "Ministry of Interior", "kind": "ministry"},
            {"key": "pp", "name": "Phnom Penh", "kind": "province", "parent": "moi",
             "chat_id": PP_CHAT},
            {"key": "pp-dp", "name": "Daun Penh", "kind": "district", "parent": "pp",
             "chat_id": DP_CHAT},
            {"key": "pp-ck", "name": "Chamkar Mon", "kind": "district", "parent": "pp"},
            {"key": "sr", "name": "Siem Reap", "kind": "province", "parent": "moi",
             "chat_id": SR_CHAT},
            {"key": "mlm", "name": "Ministry of Land", "kind": "external"},
        ],
    }


class Clock:
    """An injected clock that tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


# --- the PostgreSQL run (tests/pgtest.py) ------------------------------------------------------

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test is about SQLite itself (skipped on PostgreSQL)")
    if pgtest.enabled() and (why := pgtest.reachable()) is not None:
        raise pytest.UsageError(f"{pgtest.ENV} is set, but PostgreSQL cannot be used: {why}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not pgtest.enabled():
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "about SQLite")
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if pgtest.enabled():
        skipped = sum(1 for r in terminalreporter.stats.get("skipped", [])
                      if "SQLite only" in str(getattr(r, "longrepr", "")))
        terminalreporter.write_line(
            f"database: PostgreSQL ({pgtest.ENV}), a schema per test; {skipped} SQLite-only "
            "test(s) skipped")
        for schema in sorted(pgtest.leftover):
            try:
                pgtest.admin().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            except Exception:
                terminalreporter.write_line(f"PostgreSQL: could not drop the test schema {schema}")
    else:
        terminalreporter.write_line(
            f"database: SQLite; the PostgreSQL run was skipped ({pgtest.ENV} is not set). "
            f"To run the suite on PostgreSQL: {pgtest.HOW}")


@pytest.fixture(autouse=True)
def _postgresql_instead_of_files(monkeypatch: pytest.MonkeyPatch) -> Any:
    """In the PostgreSQL run, a database opened by its file's path opens that file's schema."""
    if not pgtest.enabled():
        yield
        return
    from bot import pg

    opened = Database.open.__func__  # type: ignore[attr-defined]
    pgtest.open_file = opened  # what a test about SQLite itself opens a file with

    async def open_pg(cls: type[Database], target: Path | str) -> Database:
        if not pg.is_url(target):
            target = pgtest.url_for(target if str(target) != ":memory:" else object())
        return await opened(cls, target)

    monkeypatch.setattr(Database, "open", classmethod(open_pg))
    yield
    pgtest.drop_all()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))  # a Monday, 09:00 in Phnom Penh


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return parse_settings(config_dict(tmp_path / "data" / "casebot.sqlite3"))


# The people of the test ministry besides the config's admin and working group:
# (telegram id, name, username, role, unit key)
PEOPLE = [
    (OFFICIAL, "Dara", "dara", "official", "pp-dp"),
    (OTHER_OFFICIAL, "Vanna", "vanna", "official", "sr"),
    (SUPERVISOR, "Sokha", "sokha", "supervisor", "pp"),
    (LIAISON, "Rith", "rith", "liaison", "mlm"),
]


async def register_people(people: PeopleService, now: datetime) -> None:
    """Register the test people the way everyone is registered: an admin's invitation link."""
    for tg_id, name, username, role, unit in PEOPLE:
        token = await people.invite(ADMIN, unit, role, now)
        await people.redeem(token, tg_id, name, username, "en", now)


@dataclass
class Domain:
    db: Database
    units: UnitService
    people: PeopleService
    cases: CaseService
    outbox: OutboxStore
    settings: Settings

    async def unit_id(self, key: str) -> int:
        return (await self.units.by_key(key)).id

    async def category_id(self, key: str) -> int:
        return next(c.id for c in await self.units.categories() if c.key == key)

    async def new_case(self, clock: Clock, **overrides: Any) -> int:
        draft = Draft(
            source="facebook_message", category_id=await self.category_id("land"),
            place_unit_id=await self.unit_id("pp-dp"), summary="Boundary dispute with neighbour",
            description="Neighbour moved the fence.", citizen_name="Sok Dara",
            citizen_contact="012 345 678",
        )
        for k, v in overrides.items():
            setattr(draft, k, v)
        case = await self.cases.create(Actor(WG, "Wg Member", None), draft, clock())
        return case.id


@pytest.fixture
async def domain(settings: Settings, clock: Clock) -> AsyncIterator[Domain]:
    db = await Database.open(settings.database_path)
    units = UnitService(db, settings)
    await units.sync_from_config()
    people = PeopleService(db, settings, units)
    await people.sync_config(clock())
    await register_people(people, clock())
    cases = CaseService(db, settings, units, people, clock)
    yield Domain(db, units, people, cases, OutboxStore(db), settings)
    await db.close()


@pytest.fixture
async def bot(tmp_path: Path, clock: Clock) -> AsyncIterator[Any]:
    from tests.harness import running_bot

    async with running_bot(tmp_path, clock) as running:
        yield running


def cli_config(domain: Domain, tmp_path: Path) -> Path:
    """A config file for the command line's tests: the domain's database (the file, or in the
    PostgreSQL run its schema) and the timezone; the commands need nothing else of it."""
    path = tmp_path / "casebot.toml"
    path.write_text(f"""timezone = "Asia/Phnom_Penh"
[database]
{pgtest.toml_database(domain.settings.database_path)}
[[categories]]
key = "land"
name = "Land dispute"
[[units]]
key = "moi"
name = "Ministry of Interior"
kind = "ministry"
""", encoding="utf-8")
    return path
