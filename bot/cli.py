"""``casebot``: run the bot, or check a config."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import math
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.config import (
    FB_APP_SECRET_ENV,
    FB_PAGE_TOKEN_ENV,
    TOKEN_ENV,
    ConfigError,
    Settings,
    config_warnings,
    facebook_secrets,
    load_settings,
    missing_khmer_names,
    resolve_config_path,
    unit_tree_lines,
)


class TokenFilter(logging.Filter):
    """Belt and braces: the token must never reach a log line."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: let the handler report it as logging would
            return True
        if self.token in message:
            record.msg = message.replace(self.token, "<token>")
            record.args = None
        return True


def setup_logging(token: str = "") -> None:
    level = os.environ.get("CASEBOT_LOG_LEVEL", "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        level = "INFO"
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL at INFO, and the URL holds the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # python-telegram-bot logs whole requests and updates at DEBUG, aiosqlite every statement
    # with its parameters: citizens' names and contacts. Keep both at INFO even when casebot
    # itself is debugged.
    for name in ("telegram", "aiosqlite"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    # The Facebook page's secrets, from the environment like the bot token: never in a log.
    secrets = [os.environ.get(name, "").strip() for name in (FB_APP_SECRET_ENV, FB_PAGE_TOKEN_ENV)]
    for secret in (token, *secrets):
        if secret:
            for handler in logging.getLogger().handlers:
                handler.addFilter(TokenFilter(secret))


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    from bot.domain.holiday_calendar import calendar_problem, holiday_lines

    problem = calendar_problem(settings)
    if problem is not None:
        print(f"config error: {problem}", file=sys.stderr)
        return 2
    missing = missing_khmer_names(settings)
    if missing:
        print(f"config error: {missing[0]}: a Khmer name is needed (officials read Khmer)"
              + (f"; {len(missing) - 1} more missing" if len(missing) > 1 else ""), file=sys.stderr)
        return 2
    print(f"OK: {len(settings.units)} units, {len(settings.categories)} categories, "
          f"timezone {settings.timezone}, database {settings.database}")
    limits = settings.citizens
    print(f"Citizens: at most {limits.max_open_requests} open requests each, "
          f"{limits.max_requests} in {limits.per_hours} h")
    print("Unit tree:")
    for line in unit_tree_lines(settings):
        print("  " + line)
    today = datetime.now(settings.tz).date()
    holidays = holiday_lines(settings, today.year)
    if holidays:
        calendar = settings.deadlines.holiday_country or "no country's calendar"
        print(f"Holidays in {today.year} ({calendar}, with deadlines.holidays and deadlines.not_holidays):")
        for line in holidays:
            print("  " + line)
    if settings.facebook is not None:
        fb, http = settings.facebook, settings.http_server
        print(f"Facebook page {fb.page_id}: its webhook at {fb.path} (listening on {http.listen}:"
              f"{http.port}), replies through {fb.graph_url}/{fb.api_version}")
        try:
            facebook_secrets()
        except ConfigError as exc:
            print(f"warning: {exc}; `casebot run` needs it", file=sys.stderr)
    for warning in config_warnings(settings, today):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """0 when the database is intact and the outbox sender alive, else 1 and one line (Docker's
    HEALTHCHECK knows only 0 and 1: a bad config is 1 here too)."""
    from bot.health import check

    try:
        settings = load_settings(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"unhealthy: config error: {exc}", file=sys.stderr)
        return 1
    problem = check(settings, datetime.now(UTC), args.max_age)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print(f"healthy: database {settings.database}, outbox sender alive")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        print(f"config error: {TOKEN_ENV}: set the bot token in the environment "
              "(it is never read from a file)", file=sys.stderr)
        return 2
    from bot.domain.holiday_calendar import calendar_problem

    problem = calendar_problem(settings)
    if problem is not None:
        print(f"config error: {problem}", file=sys.stderr)
        return 2
    if getattr(args, "webhook", False) and settings.webhook is None:
        print("config error: webhook: `casebot run --webhook` needs a [webhook] table "
              "(url, secret_token; see config/casebot.example.toml)", file=sys.stderr)
        return 2
    if settings.facebook is not None:
        try:
            facebook_secrets()
        except ConfigError as exc:
            print(f"config error: {exc}", file=sys.stderr)
            return 2
    from bot.db import open_problem

    problem = open_problem(settings.database_path) if settings.database_url is None else None
    if problem is not None:
        print(f"database error: {problem}", file=sys.stderr)
        return 2
    setup_logging(token)
    for warning in config_warnings(settings, datetime.now(settings.tz).date()):
        logging.getLogger("casebot").warning("config: %s (see casebot check-config)", warning)
    from bot.service import run

    return run(settings, token, webhook=bool(getattr(args, "webhook", False)))


async def _inbox(settings: Settings, retry: int | None) -> int:
    from bot.db import Database
    from bot.inbox import Inbox

    db = await Database.open(settings.database)
    try:
        inbox = Inbox(db)
        if retry is not None:
            if not await inbox.retry(retry):
                print(f"no parked update {retry}: `casebot inbox` lists them", file=sys.stderr)
                return 1
            print(f"update {retry} will be handled again (at once if the bot runs, else at its start)")
            return 0
        parked = await inbox.parked()
        print(f"{await inbox.backlog()} update(s) waiting, {len(parked)} parked")
        for row in parked:
            print(f"  {row.id}  {row.key}  received {row.received_at:%Y-%m-%d %H:%M} UTC, "
                  f"{row.attempts} tries: {row.error}")
        if parked:
            print("`casebot inbox --retry ID` hands one to the bot again")
        return 0
    finally:
        await db.close()


def cmd_inbox(args: argparse.Namespace) -> int:
    return _offline_run(args, lambda settings: _inbox(settings, args.retry))


def _offline(args: argparse.Namespace) -> Settings | None:
    """The settings for a command that works on the database without Telegram."""
    try:
        return load_settings(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return None


def _offline_run(args: argparse.Namespace, call: Callable[[Settings], Any]) -> int:
    """A command that works on the database without Telegram: ``call`` with the settings (a
    coroutine is run to its end); 2 when the config is bad (one line says why)."""
    settings = _offline(args)
    if settings is None:
        return 2
    result = call(settings)
    return int(asyncio.run(result) if inspect.iscoroutine(result) else result)


def cmd_import(args: argparse.Namespace) -> int:
    from bot.importer import cli_import, write_template

    if args.template:
        return write_template(args.file)
    return _offline_run(args, lambda settings: cli_import(settings, args))


def cmd_report(args: argparse.Namespace) -> int:
    from bot.reporting import cli_report

    return _offline_run(args, lambda settings: cli_report(settings, args))


def cmd_export(args: argparse.Namespace) -> int:
    from bot.reporting import cli_export

    return _offline_run(args, lambda settings: cli_export(settings, args))


def cmd_stats(args: argparse.Namespace) -> int:
    from bot.reporting import cli_stats

    return _offline_run(args, lambda settings: cli_stats(settings, args))


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.backup import cli_backup

    return _offline_run(args, lambda settings: cli_backup(settings, Path(args.dest)))


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.backup import cli_restore

    return _offline_run(args, lambda settings: cli_restore(settings, Path(args.backup), force=args.force))


def cmd_accesslog(args: argparse.Namespace) -> int:
    from bot.accesslog import cli_accesslog

    return _offline_run(args, lambda settings: cli_accesslog(settings, args))


def cmd_verify_audit(args: argparse.Namespace) -> int:
    from bot.audit_cli import cli_verify_audit

    return _offline_run(args, lambda settings: cli_verify_audit(settings, args))


def cmd_erase(args: argparse.Namespace) -> int:
    from bot.audit_cli import cli_erase

    return _offline_run(args, lambda settings: cli_erase(settings, args))


def cmd_migrate_db(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from bot.migrate_db import migrate

    return asyncio.run(migrate(Path(args.source), args.to))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds greater than 0")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="casebot", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    parsers = {}
    for name, help_text in (
        ("run", "start the bot (long polling)"),
        ("check-config", "validate a config and print the unit tree"),
        ("import", "import the carried-over backlog from CSV or XLSX"),
        ("report", "the period report the ministry publishes"),
        ("export", "cases and their events as CSV or XLSX"),
        ("stats", "public figures without personal data"),
        ("accesslog", "who saw which case's personal data, as CSV or XLSX"),
        ("inbox", "updates waiting or parked after failing; hand one to the bot again"),
        ("health", "exit 0 if the database is intact and the running bot's sender alive, else 1"),
        ("backup", "copy the database (also while the bot runs) into one checked file"),
        ("restore", "put a checked backup in place of the database (the bot stopped)"),
        ("verify-audit", "recompute the audit chain: exit 0 if the history is whole, 1 naming "
                         "the first broken link"),
        ("erase", "erase the citizen's personal data from cases (recorded in their history)"),
    ):
        parsers[name] = p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="TOML config file (default: $CASEBOT_CONFIG)")
    imp = parsers["import"]
    imp.add_argument("file", help="CSV or XLSX file (with --template: the file to write)")
    imp.add_argument("--dry-run", action="store_true", help="check every row, import nothing")
    imp.add_argument("--skip-invalid", action="store_true", help="import the valid rows anyway")
    imp.add_argument("--template", action="store_true", help="write an empty file with the header")
    rep = parsers["report"]
    rep.add_argument("--period", required=True, help="YYYY-MM, YYYY-Qn or YYYY")
    rep.add_argument("--charts", help="folder to write the PNG charts into")
    exp = parsers["export"]
    exp.add_argument("--period", help="YYYY-MM, YYYY-Qn or YYYY (default: everything)")
    exp.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    exp.add_argument("--output", "-o", required=True, help="file to write (CSV: cases; events next to it)")
    exp.add_argument("--no-personal-data", action="store_true", help="leave citizen names and contacts out")
    parsers["run"].add_argument("--webhook", action="store_true",
                                help="take updates by webhook (config [webhook]) instead of polling")
    parsers["inbox"].add_argument("--retry", type=int, metavar="ID", help="hand a parked update again")
    from bot.accesslog import add_arguments

    add_arguments(parsers["accesslog"])
    sta = parsers["stats"]
    sta.add_argument("--format", choices=("md", "json"), default="md")
    parsers["health"].add_argument(
        "--max-age", type=_seconds, metavar="SECONDS",
        help="heartbeat age that counts as dead (default: 60, or more with a long outbox.interval_seconds)")
    parsers["backup"].add_argument("dest", metavar="DEST",
                                   help="a file, or a folder to write casebot-<UTC time>.sqlite3 into")
    parsers["restore"].add_argument("backup", metavar="BACKUP", help="the backup file")
    parsers["restore"].add_argument("--force", action="store_true",
                                    help="even though the heartbeat says the bot runs (it is stopped)")
    parsers["verify-audit"].add_argument(
        "--head", metavar="HASH@DATE",
        help="also check that the chain still holds the head published on that date")
    mig = sub.add_parser("migrate-db", help="copy an SQLite database into an empty PostgreSQL one, "
                                           "then compare row counts and verify the audit chain there")
    mig.add_argument("--from", dest="source", required=True, metavar="FILE", help="the SQLite file")
    mig.add_argument("--to", required=True, metavar="URL",
                     help="postgresql://user@host:5432/database (password: CASEBOT_DATABASE_PASSWORD)")
    era = parsers["erase"]
    era.add_argument("cases", nargs="*", metavar="CASE", help="case numbers")
    era.add_argument("--citizen", type=int, metavar="ID",
                     help="a citizen's id: all their cases, requests and their own record")
    era.add_argument("--reason", required=True, help="why (the citizen's request of …)")
    args = parser.parse_args(argv)
    commands = {"check-config": cmd_check_config, "import": cmd_import, "report": cmd_report,
                "export": cmd_export, "stats": cmd_stats, "inbox": cmd_inbox, "health": cmd_health,
                "backup": cmd_backup, "restore": cmd_restore, "accesslog": cmd_accesslog,
                "verify-audit": cmd_verify_audit, "erase": cmd_erase, "migrate-db": cmd_migrate_db}
    from bot.db import DatabaseOpenError

    try:
        if args.command in commands:
            return commands[args.command](args)
        if args.command is None:
            args.config = None
        return cmd_run(args)
    except DatabaseOpenError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
