"""What every benchmark shares: the figures of the table, formatting, services on a database."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import ministry
from bot.config import Settings
from bot.db import Database
from bot.domain.cases import CaseService
from bot.domain.digest import DigestService
from bot.domain.people import PeopleService
from bot.domain.units import UnitService


@dataclass
class Figure:
    """One row of the table: a value measured beside its reference in the same run."""

    name: str
    value: str
    reference: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: bool | None = None
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers, for tests and notes
    # Set by bench.run: the store measured, the benchmark, the row's place among its figures (the
    # same row on both stores), the load average when the benchmark started.
    store: str = "sqlite"
    benchmark: str = ""
    index: int = 0
    load: str = ""

    @property
    def verdict(self) -> str:
        return "—" if self.met is None else ("✅" if self.met else "❌ missed")


def table(figures: list[Figure]) -> str:
    lines = ["| Figure | Value | Reference | Ratio | Target | Met |",
             "| --- | --- | --- | --- | --- | --- |"]
    for f in figures:
        cells = (f.name, f.value, f.reference, f.ratio, f.target, f.verdict)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def ms(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def mb(kib: float) -> str:
    return f"{kib / 1024:.0f} MB"


def ratio(value: float, reference: float) -> str:
    return "—" if reference <= 0 else f"{value / reference:.2f}"


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


@dataclass
class Domain:
    """The services ``bot.app.open_services`` builds, without an Application."""

    settings: Settings
    db: Database
    units: UnitService
    people: PeopleService
    cases: CaseService
    digests: DigestService

    async def close(self) -> None:
        await self.db.close()


async def open_domain(path: Path | str, *, sync: bool = False) -> Domain:
    """``sync``: also bring units and config people in step with the config, as at start (it
    writes, so only on working copies)."""
    settings = ministry.settings_for(path)
    db = await Database.open(path)
    units = UnitService(db, settings)
    if sync:
        await units.sync_from_config()
    else:
        await units.load_tree()
    people = PeopleService(db, settings, units)
    cases = CaseService(db, settings, units, people, lambda: ministry.NOW)
    digests = DigestService(db, settings, units, people)
    return Domain(settings, db, units, people, cases, digests)
