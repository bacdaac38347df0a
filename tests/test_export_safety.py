"""Exports are opened in spreadsheet apps: citizens' text must never become a live formula (OWASP
"CSV injection"), and no character in it may break the XLSX. In XLSX, text is a text cell marked
"quote prefix" (shown as written, no visible apostrophe, still text when edited); in CSV it gets a
leading apostrophe."""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime
from pathlib import Path

from openpyxl import load_workbook

from bot.domain.cases import Actor, Change
from bot.domain.rules import Action
from bot.reporting import TableWriter, cli_export, spreadsheet_text
from tests.conftest import WG, WG_CHAT, Clock, Domain

SUMMARY = '=HYPERLINK("http://x","y")'
NAME = "+855 12 345 678"
DESCRIPTION = "ring \x07bell\x1b and \x0bstop\nnext\tline"
NOTE = "@SUM(1+1)*cmd|' /C calc'!A0"
ACTOR = "-Evil Name"


async def hostile_case(domain: Domain, clock: Clock) -> int:
    case = await domain.new_case(clock, summary=SUMMARY, citizen_name=NAME, description=DESCRIPTION,
                                 citizen_contact="\x07=1+1")
    await domain.cases.apply(case, Action.NOTE, Actor(WG, ACTOR, WG_CHAT), Change(text=NOTE), clock())
    return case


async def export(domain: Domain, path: Path, fmt: str) -> None:
    assert await cli_export(domain.settings, argparse.Namespace(
        period=None, format=fmt, output=str(path), no_personal_data=False)) == 0


async def test_xlsx_export_has_no_formulas_and_no_control_characters(
        domain: Domain, clock: Clock, tmp_path: Path) -> None:
    await hostile_case(domain, clock)
    path = tmp_path / "all.xlsx"
    await export(domain, path, "xlsx")  # control characters used to make this fail outright
    wb = load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
    header, case = ([c for c in row] for row in wb["cases"].iter_rows(max_row=2))
    cell = dict(zip((h.value for h in header), case, strict=True))
    # As written, text cells, marked so that an app keeps them text when they are edited.
    for column, value in (("summary", SUMMARY), ("citizen_name", NAME), ("citizen_contact", "=1+1")):
        assert (cell[column].value, cell[column].data_type, cell[column].quotePrefix) == (value, "s", True)
    assert cell["description"].value == "ring bell and stop\nnext\tline"  # line breaks, tabs kept
    assert not cell["description"].quotePrefix  # only what could be read as a formula is marked
    assert cell["case"].data_type == "n" and cell["reopen_count"].value == 0  # our numbers stay numbers
    assert cell["received_at"].is_date and cell["received_at"].number_format == "yyyy-mm-dd hh:mm"
    events = [dict(zip(next(wb["events"].iter_rows(values_only=True)), r, strict=True))
              for r in wb["events"].iter_rows(min_row=2, values_only=True)]
    note = next(e for e in events if e["action"] == "note")
    assert note["note"] == NOTE and note["actor"] == ACTOR


async def test_csv_export_escapes_formulas(domain: Domain, clock: Clock, tmp_path: Path) -> None:
    await hostile_case(domain, clock)
    path = tmp_path / "all.csv"
    await export(domain, path, "csv")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        [case] = list(csv.DictReader(fh))
    assert case["summary"] == "'" + SUMMARY and case["citizen_name"] == "'" + NAME
    assert case["description"] == DESCRIPTION  # CSV can hold control characters
    assert case["citizen_contact"] == "'\x07=1+1"
    assert case["case"] == "1"
    with (tmp_path / "all-events.csv").open(newline="", encoding="utf-8-sig") as fh:
        note = next(e for e in csv.DictReader(fh) if e["action"] == "note")
    assert note["note"] == "'" + NOTE and note["actor"] == "'" + ACTOR


def test_only_text_is_escaped_numbers_and_dates_stay(tmp_path: Path) -> None:
    when = datetime(2026, 4, 1, 9, 30, tzinfo=UTC).replace(tzinfo=None)
    for starts in "=+-@\t\r":
        assert spreadsheet_text(starts + "1") == "'" + starts + "1"
    assert spreadsheet_text("Road flooded") == "Road flooded"
    assert spreadsheet_text("a = b - c") == "a = b - c"  # only the first character counts
    assert spreadsheet_text("\x1b=1") == "'\x1b=1"  # control characters first: still escaped
    path = tmp_path / "t.xlsx"
    out = TableWriter(path)
    out.sheet("t", ["n", "x", "when", "text", "flag"])([-5, -1.5, when, "-5", True])
    out.close()
    [row] = load_workbook(path)["t"].iter_rows(min_row=2)
    assert [c.value for c in row] == [-5, -1.5, when, "-5", True]
    assert [c.data_type for c in row] == ["n", "n", "d", "s", "b"]
    assert [c.quotePrefix for c in row] == [False, False, False, True, False]
    csv_path = tmp_path / "t.csv"
    out = TableWriter(csv_path)
    out.sheet("t", ["n", "text", "when"])([-5, "-5", when])
    out.close()
    assert csv_path.read_text(encoding="utf-8-sig").splitlines()[1] == "-5,'-5,2026-04-01 09:30"


def test_an_aborted_xlsx_leaves_no_file(tmp_path: Path) -> None:
    """An export that fails half-way leaves nothing that looks like a workbook."""
    path = tmp_path / "half.xlsx"
    out = TableWriter(path)
    append = out.sheet("cases", ["n"])
    for n in range(1000):
        append([n])
    assert path.exists()
    out.abort()
    assert not path.exists()
    TableWriter(tmp_path / "never.xlsx").abort()  # nothing started: nothing to remove
    assert not (tmp_path / "never.xlsx").exists()
