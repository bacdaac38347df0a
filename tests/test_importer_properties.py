"""The backlog importer over arbitrary files and cell values: a file is read or refused with one
line (FileProblem); every row is imported or rejected with its reasons, never an exception; the
reasons never quote a citizen's name or contact, and escaped they are valid Telegram HTML."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.units import Category, Unit
from bot.importer import COLUMNS, SUMMARY_MAX, FileProblem, Table, read_table, validate
from bot.inputs import KHMER_DIGITS
from tests.fakebotapi import parse_html

TZ = ZoneInfo("Asia/Phnom_Penh")
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
UNITS = [
    Unit(1, "moi", "Ministry of Interior", "ministry", None, None, False, 1),
    Unit(2, "pp-dp", "Daun Penh", "district", 1, -100101, False, 0),
    Unit(3, "mlm", "Ministry of Land", "external", None, None, False, 0),
]
CATEGORIES = [Category(1, "land", "Land dispute"), Category(2, "docs", "Civil documents")]
SECRET = "Secret-Name-7"  # in citizen_name and contact: never in a reason

NEAR_VALID = st.sampled_from([
    "", " ", "2026-10-01", "2026-10-01 ", "២០២៦-១០-០១", "٢٠٢٦-١٠-٠١", "0000-01-01", "9999-12-31",
    "2026-02-30", "pp-dp", "PP-DP", "mlm", "moi", "land", "DOCS", "new", "In Progress", "resolved",
    "closed", "forwarded", "acknowledged", "merged", "phone", "facebook_message", "R-1", "<b>", "&",
    "x" * 250, "x" * 3500, "1" * 5000, KHMER_DIGITS,
])
CELL = st.one_of(
    st.none(), NEAR_VALID, st.text(max_size=40), st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.dates(), st.datetimes(), st.times(),
)
# Per column, values that fit: rows of them (with a few odd cells) are imported.
FITTING: dict[str, list[object]] = {
    "received_date": ["2026-10-01", date(2026, 10, 1)],
    "source": ["phone", ""], "category": ["land", "DOCS"], "unit": ["pp-dp", "mlm"],
    "summary": ["Road flooded"], "description": ["", "Water in the street"],
    "status": ["new", "resolved", "forwarded", ""], "resolved_date": ["", "2026-10-05"],
}
PRIVATE = {COLUMNS.index("citizen_name"), COLUMNS.index("contact")}


@st.composite
def rows(draw: st.DrawFn) -> list[tuple[int, list[object]]]:
    out = []
    for line in range(2, 2 + draw(st.integers(1, 4))):
        width = draw(st.one_of(st.just(len(COLUMNS)), st.integers(0, len(COLUMNS) + 2)))
        cells: list[object] = []
        for i, name in enumerate([*COLUMNS, "extra", "extra"][:width]):
            if i in PRIVATE:
                cells.append(SECRET)
            elif draw(st.integers(0, 4)) == 4:  # now and then an odd cell
                cells.append(draw(CELL))
            elif name == "external_ref":
                cells.append(draw(st.sampled_from([f"R-{line}", "R-1"])))  # now and then twice
            else:
                cells.append(draw(st.sampled_from(FITTING.get(name, [None]))))
        out.append((line, cells))
    return out


@given(rows(), st.booleans())
def test_every_row_is_imported_or_rejected_with_reasons(table_rows: list[tuple[int, list[object]]],
                                                        strict: bool) -> None:
    table = Table(list(COLUMNS), table_rows, strict_width=strict)
    cases, problems = validate(table, UNITS, CATEGORIES, TZ, NOW)
    lines = [line for line, _cells in table_rows]
    rejected = {line for line, _reason in problems}
    assert len(cases) + len(rejected) == len(lines)
    assert rejected <= set(lines)
    for case in cases:
        assert case.received_at <= NOW and 0 < len(case.external_ref) <= 100
        assert 0 < len(case.summary) <= SUMMARY_MAX and case.citizen_name
        assert case.resolved_at is None or case.received_at <= case.resolved_at <= NOW
    for _line, reason in problems:
        assert SECRET not in reason
        assert parse_html(html.escape(reason, quote=False))[0] == reason  # as the bot shows it
        assert len(reason) < 300


@given(st.binary(max_size=300), st.sampled_from(["backlog.csv", "backlog.xlsx", "backlog.txt"]))
def test_any_file_is_read_or_refused_with_one_line(data: bytes, name: str) -> None:
    try:
        read_table(name, data)
    except FileProblem as exc:
        assert exc.message and "\n" not in exc.message


@given(st.lists(st.lists(st.text(max_size=12), max_size=len(COLUMNS) + 2), max_size=5),
       st.sampled_from([",", ";", "\t"]))
def test_any_csv_text_is_read_or_refused(cells: list[list[str]], delimiter: str) -> None:
    text = "\r\n".join([delimiter.join(COLUMNS), *(delimiter.join(row) for row in cells)])
    try:
        table = read_table("backlog.csv", text.encode())
    except FileProblem as exc:
        assert exc.message
        return
    validate(table, UNITS, CATEGORIES, TZ, NOW)
