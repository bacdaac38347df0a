"""The table of a run on both stores (``--store sqlite,postgresql``): each figure on SQLite and
on PostgreSQL side by side, their ratio, and each store's own reference from the same run."""

from __future__ import annotations

import re

from bench.common import Figure

TAGS = (" [SQLite]", " [PostgreSQL]")
_NUMBER = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(µs|ms|s|/s|MB)?(?![\w/])")
NOISE = 0.05  # within 5% either way: no side named
_SCALE = {"µs": 1e-6, "ms": 1e-3, "s": 1.0}


def quantity(value: str) -> tuple[float, str] | None:
    """The leading number of a figure's value, times in seconds: ``"1.02 s (snapshot …)"`` →
    ``(1.02, "s")``, ``"177/s"`` → ``(177.0, "/s")``, ``"8.60 ms"`` → ``(0.0086, "s")``."""
    m = _NUMBER.match(value)
    if m is None:
        return None
    number, unit = float(m.group(1).replace(",", "")), m.group(2) or ""
    if unit in _SCALE:
        return number * _SCALE[unit], "s"
    return number, unit


def base_name(name: str) -> str:
    for tag in TAGS:
        if name.endswith(tag):
            return name[: -len(tag)]
    return name


def pg_ratio(sqlite: str, postgresql: str) -> str:
    """PostgreSQL's value over SQLite's, and which is slower (a rate is slower when lower, a
    time or a size when higher; not named within 5%)."""
    a, b = quantity(sqlite), quantity(postgresql)
    if a is None or b is None or a[1] != b[1] or a[0] == 0:
        return "—"
    r = b[0] / a[0]
    if a[1] == "s" or a[1] == "MB":
        worse = r > 1 + NOISE
    elif a[1] == "/s":
        worse = r < 1 - NOISE
    else:
        return f"{r:.2f}"
    return f"{r:.2f}" + (" (PostgreSQL slower)" if worse and a[1] != "MB" else
                         " (PostgreSQL larger)" if worse else "")


def comparison(figures: list[Figure]) -> str:
    """One row per figure measured on both stores, in the order measured (a figure is the same
    one on both when it is the same benchmark's same row: its name may hold counts that differ)."""
    by_store: dict[str, dict[object, Figure]] = {}
    order: list[object] = []
    for f in figures:
        key: object = (f.benchmark, f.index) if f.benchmark else base_name(f.name)
        if key not in order:
            order.append(key)
        by_store.setdefault(f.store, {})[key] = f
    sqlite, pg = by_store.get("sqlite", {}), by_store.get("postgresql", {})
    lines = ["| Figure | SQLite | PostgreSQL | PostgreSQL/SQLite | Reference (SQLite run) "
             "| Reference (PostgreSQL run) | Load |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for key in order:
        if key not in sqlite or key not in pg:
            continue
        s, p = sqlite[key], pg[key]
        load = " / ".join(f.load or "?" for f in (s, p))
        cells = (base_name(s.name), s.value, p.value, pg_ratio(s.value, p.value),
                 f"{s.reference} ({s.ratio})", f"{p.reference} ({p.ratio})", load)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
