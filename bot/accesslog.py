"""``casebot accesslog``: the access log (who saw which case's personal data) as a CSV or XLSX file,
for an auditor or to answer a citizen. The log holds none of the personal data itself."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

from bot.inputs import parse_case_number, parse_date

if TYPE_CHECKING:
    from bot.config import Settings

HEADER = ["at_utc", "case", "via", "who_id", "who_name", "chat_id", "unit"]


def case_number(text: str) -> int:
    number = parse_case_number(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a case number")
    return number


def day(text: str) -> str:
    if parse_date(text) is None:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a date like 2026-04-30")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--case", type=case_number, metavar="N", help="only this case")
    parser.add_argument("--since", type=day, metavar="YYYY-MM-DD",
                        help="only from this local date on (the config's timezone)")
    parser.add_argument("--output", "-o", required=True,
                        help="file to write: .csv, or .xlsx for a workbook")


async def cli_accesslog(settings: Settings, args: argparse.Namespace) -> int:
    # Here, not above: `casebot --help` and the other commands do not load the database code.
    from bot.db import Database
    from bot.domain.access import AccessLog
    from bot.domain.people import PeopleService
    from bot.domain.units import UnitService
    from bot.reporting import TableWriter

    since = None
    if args.since is not None:
        local = parse_date(args.since)
        assert local is not None  # checked by ``day``
        since = datetime.combine(local, time(0), tzinfo=settings.tz)
    path = Path(args.output)
    db = await Database.open(settings.database)
    out = TableWriter(path)
    written = 0
    try:
        units = UnitService(db, settings)
        log = AccessLog(db, units, PeopleService(db, settings, units))
        append = out.sheet("access", HEADER)
        async for a in log.rows(args.case, since):
            append([a.at.isoformat(), a.case_id, a.via, a.who_id, a.who_name, a.chat_id, a.unit_key])
            written += 1
        files = out.close()
    except OSError as exc:  # the file cannot be written: one line, no traceback
        out.abort()
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except BaseException:
        out.abort()
        raise
    finally:
        await db.close()
    for file in files:
        print(f"wrote {file}")
    print(f"views of personal data: {written}")
    return 0
