"""``casebot verify-audit`` and ``casebot erase``: the audit chain and erasure from the command line
(the bot need not be stopped)."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime

from bot import audit
from bot.config import Settings
from bot.i18n import _, use_locale
from bot.inputs import excerpt, parse_case_number, plain_text


async def cli_verify_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 and one summary line when the chain is whole; 1 and the breaks (the first broken
    link first) when not; 2 when it cannot be checked (no database, a malformed ``--head``)."""
    published = None
    if args.head:
        try:
            published = audit.Published.parse(args.head)
        except ValueError as exc:
            print(f"--head: {exc}", file=sys.stderr)
            return 2
    try:
        problems, summary = await audit.check(settings.database, published)
    except FileNotFoundError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 2
    if len(problems) == 1 and problems[0].kind == "missing":
        print(f"cannot check: {problems[0].what}", file=sys.stderr)
        return 2
    if problems:
        for line in audit.iter_problem_lines(problems):
            print(line)
        return 1
    print(summary.line())
    return 0


async def cli_erase(settings: Settings, args: argparse.Namespace) -> int:
    """Erase the personal data of each case named, recorded as done from the command line (and by
    which system user), with the reason given. Exit 0 when every case was erased, 1 otherwise."""
    from bot.db import Database
    from bot.domain.cases import SYSTEM, Actor, CaseService
    from bot.domain.errors import DomainError
    from bot.domain.model import Change
    from bot.domain.people import PeopleService
    from bot.domain.rules import REQUIRED_TEXT, Action
    from bot.domain.units import UnitService

    reason = (args.reason or "").strip()
    if len(reason) < REQUIRED_TEXT[Action.ERASE]:
        print(f"--reason: say why (at least {REQUIRED_TEXT[Action.ERASE]} characters), e.g. "
              "--reason \"the citizen's request of 2026-05-04\"", file=sys.stderr)
        return 2
    citizen = getattr(args, "citizen", None)
    if not args.cases and citizen is None:
        print("name the cases, or --citizen ID", file=sys.stderr)
        return 2
    numbers = []
    for arg in args.cases:
        n = parse_case_number(arg)
        if n is None:
            print(f"{plain_text(excerpt(arg))}: not a case number", file=sys.stderr)
            return 2
        numbers.append(n)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "?"
    who = Actor(SYSTEM.tg_id, f"casebot erase ({user})")
    db = await Database.open(settings.database)
    failed = 0
    try:
        units = UnitService(db, settings)
        await units.load_tree()
        people = PeopleService(db, settings, units)
        cases = CaseService(db, settings, units, people, lambda: datetime.now(UTC))
        with use_locale(settings.default_language):
            if citizen is not None:
                from bot.domain.erasure import erase_citizen

                try:
                    erased = await erase_citizen(cases, citizen, who, reason, datetime.now(UTC))
                except DomainError as exc:
                    print(f"citizen {citizen}: {plain_text(exc.user_message())}", file=sys.stderr)
                    return 1
                for n in erased:
                    print(_("#{n}: personal data erased").format(n=n))
            for n in numbers:
                try:
                    await cases.apply(n, Action.ERASE, who, Change(text=reason), datetime.now(UTC))
                except DomainError as exc:
                    failed += 1
                    print(f"#{n}: {plain_text(exc.user_message())}", file=sys.stderr)
                    continue
                print(_("#{n}: personal data erased").format(n=n))
    finally:
        await db.close()
    return 1 if failed else 0
