"""``casebot``: run the bot, or check a config."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bot.config import TOKEN_ENV, ConfigError, load_settings, resolve_config_path, unit_tree_lines


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
    if token:
        for handler in logging.getLogger().handlers:
            handler.addFilter(TokenFilter(token))


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(f"OK: {len(settings.units)} units, {len(settings.categories)} categories, "
          f"timezone {settings.timezone}, database {settings.database_path}")
    print("Unit tree:")
    for line in unit_tree_lines(settings):
        print("  " + line)
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
    setup_logging(token)
    from bot.app import build_application

    app = build_application(settings, token)
    app.run_polling(allowed_updates=["message", "callback_query", "my_chat_member"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="casebot", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    for name, help_text in (("run", "start the bot (long polling)"),
                            ("check-config", "validate a config and print the unit tree")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="TOML config file (default: $CASEBOT_CONFIG)")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return cmd_check_config(args)
    if args.command in (None, "run"):
        if args.command is None:
            args.config = None
        return cmd_run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
