"""``python -m bot`` runs the bot, like ``casebot run``."""

import sys

from bot.cli import main

sys.exit(main(sys.argv[1:] or ["run"]))
