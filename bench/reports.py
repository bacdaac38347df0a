"""Figure 6: reports and exports (issue 6): ``report`` for a year and ``export --format xlsx``
of 100k cases, time and peak memory.

HOOK (issue 6): not measured yet; the table says so. To measure, do as bench/memory.py does:
one subprocess per command on a working copy of the 100k database (``casebot report`` for a
year, ``casebot export --format xlsx``), its wall time and VmHWM, beside the same on the 10k
database as the reference.
"""

from __future__ import annotations

import importlib.util

from bench.common import Figure

NAME = "Reports and exports: report for a year, export --format xlsx of 100k cases"


def landed() -> bool:
    """Whether the reports of issue 6 are in the code (bot/domain/reports.py with ``report``)."""
    if importlib.util.find_spec("bot.domain.reports") is None:
        return False
    import bot.domain.reports as reports

    return hasattr(reports, "report") or hasattr(getattr(reports, "ReportService", None), "report")


def run() -> list[Figure]:
    if landed():
        return [Figure(NAME, "not measured yet: hook in bench/reports.py (reports landed with issue 6)")]
    return [Figure(NAME, "pending: reports and exports land in issue 6")]
