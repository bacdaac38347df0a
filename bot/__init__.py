"""casebot: a Telegram bot that coordinates a ministry's public-requests working group."""

import os

# Opt in to python-telegram-bot's coming behaviour (durations as timedelta, e.g. retry_after)
# so v22 does not warn on every rate limit; our code handles both forms.
os.environ.setdefault("PTB_TIMEDELTA", "1")
