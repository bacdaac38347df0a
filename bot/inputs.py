"""What people type, read one safe way, and quoted back one safe way.

Numbers (case numbers, Telegram ids, the ids in buttons), dates and periods accept ASCII digits
and Khmer digits (០–៩, what a Khmer keyboard types) and nothing else: "²", Arabic-Indic or
fullwidth digits are not numbers here, so they get the usage line instead of resolving to a case.
Every value is bounded (SQLite stores 64-bit integers; Python refuses to read a number of more than
4,300 digits), and a number out of bounds is no number either.

Input quoted back in an answer goes through ``excerpt``: one line, a few words, HTML-escaped.
"""

from __future__ import annotations

import html
import re
from datetime import date

KHMER_DIGITS = "០១២៣៤៥៦៧៨៩"  # U+17E0..U+17E9
_TO_ASCII = str.maketrans(KHMER_DIGITS, "0123456789")

INT64_MAX = 2**63 - 1            # the largest INTEGER SQLite stores, and so the largest Telegram id
CASE_NUMBER_MAX = 999_999_999    # case numbers have at most nine digits
BUTTON_ID_MAX = 2**31 - 1        # the ids the bot itself puts in buttons: cases, units, pages…
YEAR_MIN, YEAR_MAX = 1900, 2999  # dates and periods: far from the ends of Python's calendar
EXCERPT_MAX = 40                 # characters of someone's input quoted back in an answer

_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")  # as strptime's %Y-%m-%d reads it
_USERNAME = re.compile(r"@?[A-Za-z][A-Za-z0-9_]{0,31}")
_TAG = re.compile(r"<[^>]*>")


def ascii_digits(text: str) -> str:
    """``text`` with Khmer digits written as ASCII digits; everything else as it is."""
    return text.translate(_TO_ASCII)


def parse_number(text: str, *, minimum: int = 0, maximum: int = INT64_MAX, khmer: bool = True) -> int | None:
    """The whole of ``text`` as a number from ``minimum`` to ``maximum``, or None.

    Only ASCII digits, and Khmer digits unless ``khmer`` is False; no sign, no spaces."""
    digits = ascii_digits(text) if khmer else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(maximum)):  # never hand int() a huge string
        return None
    value = int(significant)
    return value if minimum <= value <= maximum else None


def parse_case_number(text: str) -> int | None:
    """A case number as people write it: ``12``, ``#12``, ``១២`` or ``#១២``."""
    return parse_number(text.strip().removeprefix("#"), minimum=1, maximum=CASE_NUMBER_MAX)


def parse_person(text: str) -> int | str | None:
    """Someone named in a command: a Telegram id (an int), a @username (the str without the @),
    or None when it is neither."""
    text = text.strip()
    tg_id = parse_number(text, minimum=1)
    if tg_id is not None:
        return tg_id
    return text.removeprefix("@") if _USERNAME.fullmatch(text) else None


def parse_date(text: str) -> date | None:
    """A calendar date written YYYY-MM-DD (ASCII or Khmer digits), from YEAR_MIN to YEAR_MAX."""
    m = _DATE.fullmatch(ascii_digits(text.strip()))
    if m is None:
        return None
    year, month, day = (int(g) for g in m.groups())
    if not YEAR_MIN <= year <= YEAR_MAX:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def excerpt(text: str, limit: int = EXCERPT_MAX) -> str:
    """Someone's input quoted back in an HTML answer: on one line, at most ``limit`` characters
    (cut with "…"), escaped."""
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return html.escape(line, quote=False)


def plain_text(text: str) -> str:
    """An answer written in Telegram HTML, as plain text: for a button's toast or a terminal."""
    return html.unescape(_TAG.sub("", text))
