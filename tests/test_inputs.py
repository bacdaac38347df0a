"""Reading what people type, one safe way (bot/inputs.py), and the parsers built on it: the ids in
buttons, case cards, periods. Properties over arbitrary text: never an exception, a value
within its bounds or none at all."""

from __future__ import annotations

import argparse
import unicodedata
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import Invalid
from bot.domain.reports import parse_period
from bot.handlers.cards import _parse_card, _parse_prompt
from bot.handlers.pickers import parse_ids
from bot.inputs import (
    BUTTON_ID_MAX,
    CASE_NUMBER_MAX,
    INT64_MAX,
    KHMER_DIGITS,
    YEAR_MAX,
    YEAR_MIN,
    excerpt,
    parse_case_number,
    parse_date,
    parse_number,
    parse_person,
    plain_text,
)
from bot.reporting import cli_export, cli_report, fairness_lines
from tests.conftest import Domain
from tests.fakebotapi import parse_html

TZ = ZoneInfo("Asia/Phnom_Penh")

# Every decimal digit Unicode knows that is neither ASCII nor Khmer (Arabic-Indic, Devanagari,
# fullwidth, Thai, mathematical…), and the digit-like characters int() refuses ("²", "①").
OTHER_DIGITS = [c for c in map(chr, range(0x110000))
                if unicodedata.decimal(c, None) is not None and not ("0" <= c <= "9" or c in KHMER_DIGITS)]
DIGIT_LIKE = ["²", "³", "¹", "①", "⑳", "½", "Ⅻ", "𝟚"]
NUMBER_TEXT = st.text(st.sampled_from([*"0123456789", *KHMER_DIGITS, *OTHER_DIGITS[:40], *DIGIT_LIKE, "#",
                                       "-", "+", " ", "_", "."]), max_size=30)
ANY_TEXT = st.one_of(NUMBER_TEXT, st.text(max_size=60))


def test_ascii_and_khmer_digits_are_numbers() -> None:
    assert parse_number("0") == 0
    assert parse_number("42") == 42
    assert parse_number("៤២") == 42
    assert parse_number("4២") == 42  # a keyboard switched half-way
    assert parse_number("000012") == 12
    assert parse_number(str(INT64_MAX)) == INT64_MAX
    assert parse_number("0" * 5000 + "7") == 7


@pytest.mark.parametrize("text", ["", " 1", "1 ", "-1", "+1", "1.0", "1_000", "0x10", "١٢", "१२", "１２", "๑๒",
                                  "²", "1²", "①", "𝟚", "\u0661"])
def test_anything_else_is_no_number(text: str) -> None:
    assert parse_number(text) is None


def test_no_other_script_digit_is_a_number() -> None:
    assert len(OTHER_DIGITS) > 600  # the whole of Unicode was looked through
    for c in OTHER_DIGITS:
        assert parse_number(c) is None and parse_number("1" + c) is None, c


def test_bounds() -> None:
    assert parse_number(str(INT64_MAX + 1)) is None  # what SQLite would refuse with OverflowError
    assert parse_number("9" * 5000) is None  # what int() would refuse with ValueError
    assert parse_number("5", minimum=6) is None
    assert parse_number("៥", khmer=False) is None
    assert parse_case_number("#12") == parse_case_number(" ១២ ") == parse_case_number("#១២") == 12
    assert parse_case_number(str(CASE_NUMBER_MAX)) == CASE_NUMBER_MAX
    for text in ("0", "#0", str(CASE_NUMBER_MAX + 1), "##1", "#", "", "#٣", "99999999999999999999"):
        assert parse_case_number(text) is None, text


@given(ANY_TEXT, st.integers(0, 10**6), st.integers(0, INT64_MAX), st.booleans())
def test_parse_number_never_fails_and_stays_in_bounds(text: str, low: int, high: int, khmer: bool) -> None:
    value = parse_number(text, minimum=low, maximum=high, khmer=khmer)
    assert value is None or low <= value <= high
    if value is not None:
        assert all("0" <= c <= "9" or (khmer and c in KHMER_DIGITS) for c in text)


@given(st.integers(0, INT64_MAX))
def test_every_number_reads_back(n: int) -> None:
    assert parse_number(str(n)) == n
    assert parse_number(str(n).translate(str.maketrans("0123456789", KHMER_DIGITS))) == n


@given(ANY_TEXT)
def test_case_numbers_and_people(text: str) -> None:
    n = parse_case_number(text)
    assert n is None or 1 <= n <= CASE_NUMBER_MAX
    who = parse_person(text)
    assert who is None or (isinstance(who, int) and 1 <= who <= INT64_MAX) or (
        isinstance(who, str) and who.isascii() and 1 <= len(who) <= 32)


def test_people_are_ids_or_usernames() -> None:
    assert parse_person("@dara") == parse_person("dara") == "dara"
    assert parse_person("2001") == parse_person("២០០១") == 2001
    for text in ("²", "<b>", "@", "@1abc", "99999999999999999999", "-5", "a b", "dara!", "x" * 40):
        assert parse_person(text) is None, text


def test_dates() -> None:
    assert parse_date("2026-04-30") == parse_date("២០២៦-០៤-៣០") == parse_date("2026-4-30") == date(2026, 4, 30)
    for text in ("2026-02-30", "2026-004-30", "30/04/2026", "٢٠٢٦-٠٤-٣٠", "9999-12-31", "0000-01-01",
                 f"{YEAR_MIN - 1}-12-31", f"{YEAR_MAX + 1}-01-01", "2026-04-30T00:00", ""):
        assert parse_date(text) is None, text
    assert parse_date(f"{YEAR_MAX}-12-31") == date(YEAR_MAX, 12, 31)


@given(ANY_TEXT)
def test_parse_date_never_fails(text: str) -> None:
    day = parse_date(text)
    assert day is None or YEAR_MIN <= day.year <= YEAR_MAX


def test_periods() -> None:
    assert parse_period("2026-04", TZ).label == "2026-04"
    assert parse_period("២០២៦-q២", TZ).label == "2026-Q2"
    assert parse_period("2026", TZ).kind == "year"
    assert parse_period(str(YEAR_MAX), TZ).end.year == YEAR_MAX + 1
    for text in ("9999", "0000", "9999-12", "0001-Q1", f"{YEAR_MIN - 1}", f"{YEAR_MAX + 1}-01"):
        with pytest.raises(Invalid, match="out of range"):
            parse_period(text, TZ)
    for text in ("2026-13", "2026-00", "2026-Q5", "2026-Q0", "٢٠٢٦", "26", "2026-4", "<b>", "x" * 5000):
        with pytest.raises(Invalid, match="is not a period"):
            parse_period(text, TZ)


@given(ANY_TEXT)
def test_parse_period_gives_a_period_or_one_short_valid_sentence(text: str) -> None:
    try:
        period = parse_period(text, TZ)
    except Invalid as exc:
        message = exc.user_message()
        parse_html(message)  # valid Telegram HTML
        assert len(message) < 120
        return
    assert period.start < period.end and YEAR_MIN <= period.start.year <= YEAR_MAX


async def test_cli_periods_out_of_range_get_one_plain_line(
        domain: Domain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli_report(domain.settings, argparse.Namespace(period="9999", charts=None)) == 2
    assert await cli_export(domain.settings, argparse.Namespace(
        period="<b>", format="csv", output=str(tmp_path / "x.csv"), no_personal_data=True)) == 2
    assert capsys.readouterr().err == (
        "error: “9999” is out of range: give a year from 1900 to 2999.\n"
        "error: “<b>” is not a period like 2026-04, 2026-Q2 or 2026.\n")
    assert not (tmp_path / "x.csv").exists()


def test_excerpt_is_short_escaped_and_on_one_line() -> None:
    assert excerpt("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    assert excerpt("a\n\nb\tc") == "a b c"
    assert excerpt("x" * 5000) == "x" * 39 + "…"
    assert excerpt("<" * 100, 10) == "&lt;" * 9 + "…"


@given(st.text(max_size=300), st.integers(2, 80))
def test_excerpt_is_always_valid_html_of_at_most_the_limit(text: str, limit: int) -> None:
    shown = excerpt(text, limit)
    plain, entities = parse_html(shown)
    assert entities == [] and len(plain) <= limit and "\n" not in plain
    assert plain_text(shown) == plain


def test_small_counts_in_the_fairness_lines_are_escaped() -> None:
    row = {"province": "Kep & <Kampot>", "median_days_to_close": None, "share_overdue": None,
           "out_of_order_closes": "<5"}
    lines = fairness_lines({"province": [row]}, None)
    plain, _entities = parse_html("\n".join(lines))
    assert "Kep & <Kampot>: median — days to close, — overdue, <5 closed out of order" in plain
    assert "<5 closed out of order" in fairness_lines({"province": [row]}, None, html=False)[1]


def test_plain_text() -> None:
    assert plain_text("“&lt;b&gt;” is not…\nUsage: <code>/case &lt;number&gt;</code>") == (
        "“<b>” is not…\nUsage: /case <number>")


# --- the data of buttons ------------------------------------------------------------------------

def test_button_ids() -> None:
    assert parse_ids("ap:1:0:2", 3) == [1, 0, 2]
    assert parse_ids(f"as:1:{BUTTON_ID_MAX}", 2) == [1, BUTTON_ID_MAX]
    for data, count in [("as:²:1", 2), ("ap:²:0:0", 3), ("fw:²:6", 2), ("ans:²", 1), ("as:1:១", 2),
                        ("as:1", 2), ("as:1:2:3", 2), ("as::1", 2), (f"as:1:{BUTTON_ID_MAX + 1}", 2),
                        ("as:99999999999999999999999:1", 2), ("as:-1:2", 2), ("as:1:2 ", 2)]:
        assert parse_ids(data, count) is None, data
    assert _parse_card("c:1:2:acc") == (1, 2, "acc")
    for data in ("c:²:1:acc", "c:1:²:acc", "c:٣:1:acc", "c:1:2:zzz", "c:1:2", "c:1:2:acc:x",
                 "c:99999999999:1:acc"):
        assert _parse_card(data) is None, data
    assert _parse_prompt("ans:7") == {"case": 7, "version": None, "action": "provide_info", "code": "ans"}
    assert _parse_prompt("c:7:3:acc") is None  # done at once, no words asked


BUTTON_DATA = st.text(st.sampled_from([*"0123456789:", *KHMER_DIGITS[:3], "²", "٣", "-", "a", "c", "s"])
                      | st.characters(), max_size=64)


@given(BUTTON_DATA, st.integers(1, 4))
def test_button_parsers_never_fail(data: str, count: int) -> None:
    ids = parse_ids(data, count)
    assert ids is None or (len(ids) == count and all(0 <= i <= BUTTON_ID_MAX for i in ids))
    card = _parse_card(data)
    assert card is None or (0 <= card[0] <= BUTTON_ID_MAX and 0 <= card[1] <= BUTTON_ID_MAX)
    for prefix in ("ans:", "fw:", "c:"):
        _parse_prompt(prefix + data)
