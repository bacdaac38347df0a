"""The backlog import: reading CSV and XLSX, checking every row, importing once, and the CLI."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from bot import cli
from bot.db import table_names
from bot.domain.cases import SYSTEM
from bot.domain.rules import Action, Status
from bot.importer import COLUMNS, Checked, FileProblem, check_file, read_table
from bot.render import history_lines
from tests import pgtest
from tests.conftest import Clock, Domain, config_dict

HEADER = ",".join(COLUMNS)
# A valid row: received on 1 October 2026 (the test clock is 2 November 2026, 09:00 local).
FIELDS = {
    "external_ref": "R-1", "received_date": "2026-10-01", "source": "facebook_message",
    "category": "land", "unit": "pp-dp", "summary": "Boundary dispute", "description": "Fence moved",
    "citizen_name": "Sok Dara", "contact": "012 345 678", "status": "new", "resolved_date": "",
}


def row(**changes: str) -> str:
    values = {**FIELDS, **changes}
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([values[c] for c in COLUMNS])
    return buf.getvalue()


def csv_file(*rows: str, header: str = HEADER, bom: bool = False, eol: str = "\r\n",
             encoding: str = "utf-8") -> bytes:
    text = eol.join([header, *rows]) + eol
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


async def check(domain: Domain, clock: Clock, data: bytes, name: str = "backlog.csv") -> Checked:
    return await check_file(name, data, domain.units, domain.cases, domain.settings.tz, clock())


async def problems_of(domain: Domain, clock: Clock, data: bytes) -> list[tuple[int, str]]:
    return (await check(domain, clock, data)).problems


# --- reading ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("bom", "eol"), [(True, "\r\n"), (False, "\r\n"), (True, "\n"), (False, "\n")])
async def test_csv_as_excel_writes_it(domain: Domain, clock: Clock, bom: bool, eol: str) -> None:
    data = csv_file(row(), row(external_ref="R-2", summary="Birth certificate", category="DOCS",
                               unit="PP-DP", status="In Progress", source=""), bom=bom, eol=eol)
    checked = await check(domain, clock, data)
    assert checked.problems == [] and checked.checked == 2
    first, second = checked.rows
    assert first.external_ref == "R-1" and first.citizen_name == "Sok Dara"
    assert first.citizen_contact == "012 345 678"
    assert first.received_at == datetime(2026, 10, 1, 5, 0, tzinfo=UTC)  # noon in Phnom Penh
    assert first.status is Status.NEW and first.source == "facebook_message"
    assert first.unit_id == await domain.unit_id("pp-dp")
    # Keys are case-insensitive, an empty source is "other", statuses as people write them.
    assert second.category_id == await domain.category_id("docs")
    assert second.source == "other" and second.status is Status.IN_PROGRESS
    assert checked.summary() == "checked 2 rows: 2 to import, 0 already imported, 0 rejected"


async def test_csv_semicolons_quotes_blank_rows_and_line_numbers(domain: Domain, clock: Clock) -> None:
    text = "\r\n".join([
        HEADER,
        row(description="line one\nline two, with a comma"),  # lines 2-3
        "",                                                     # line 4: blank
        "," * (len(COLUMNS) - 1),                               # line 5: Excel's empty row
        row(external_ref="R-2", unit="pp-xx"),                  # line 6
    ]) + "\r\n"
    checked = await check(domain, clock, text.encode())
    assert checked.checked == 2
    assert checked.rows[0].description == "line one\nline two, with a comma"
    assert checked.problems == [(6, "unknown unit 'pp-xx'")]
    semicolons = csv_file(row().replace(",", ";"), header=HEADER.replace(",", ";"))
    checked = await check(domain, clock, semicolons)
    assert checked.problems == [] and checked.rows[0].summary == "Boundary dispute"


def xlsx(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header if header is not None else list(COLUMNS))
    for r in rows:
        sheet.append(r)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


async def test_xlsx_with_date_cells_numbers_and_text_dates(domain: Domain, clock: Clock) -> None:
    data = xlsx([
        [1001, datetime(2026, 9, 1), "phone", "land", "pp-dp", "Road flooded", None, "Chan Thy",
         85512345678, "resolved", date(2026, 9, 20)],
        [None] * len(COLUMNS),                       # an empty row: skipped
        ["R-2", "2026-09-02", "letter", "docs", "mlm", "Land title", "", "Keo Mony", "", "forwarded",
         None],
        ["R-3", "02/09/2026", "letter", "docs", "pp", "Bad date", "", "Keo Mony", "", "new", None],
    ])
    checked = await check(domain, clock, data, "backlog.xlsx")
    assert checked.problems == [(5, "received_date: '02/09/2026' is not a date like 2026-04-30")]
    resolved, forwarded = checked.rows
    assert resolved.external_ref == "1001" and resolved.citizen_contact == "85512345678"
    assert resolved.received_at == datetime(2026, 9, 1, 5, 0, tzinfo=UTC)
    assert resolved.resolved_at == datetime(2026, 9, 20, 5, 0, tzinfo=UTC)
    assert resolved.status is Status.RESOLVED and resolved.description == ""
    assert forwarded.status is Status.FORWARDED and forwarded.unit_id == await domain.unit_id("mlm")


# --- one clear line for a file that cannot be read --------------------------------------------

@pytest.mark.parametrize(("name", "data", "expected"), [
    ("backlog.csv", csv_file(row(), row(external_ref="R-2", citizen_name="Fran\u00e7ois"),
                             encoding="cp1252"),
     "the file is not UTF-8 (first at line 3): in Excel, save it as “CSV UTF-8 (Comma delimited)”"),
    ("backlog.csv", (HEADER + "\r\n" + row() + "\r\n").encode("utf-16"),
     "the file is UTF-16 (“Unicode text”), not UTF-8: in Excel, save it as “CSV UTF-8 (Comma delimited)”"),
    ("backlog.csv", (HEADER + "\r\n").encode("utf-16-le"),
     "the file is UTF-16 (“Unicode text”), not UTF-8: in Excel, save it as “CSV UTF-8 (Comma delimited)”"),
    ("backlog.csv", csv_file(row(), header=HEADER.replace("citizen_name,contact", "name,phone")),
     "missing columns: citizen_name (in the header, line 1)"),
    ("backlog.xlsx", xlsx([], header=["external_ref", "summary"]),
     "missing columns: received_date, category, unit, citizen_name (in the header, line 1)"),
    ("backlog.csv", csv_file(header=HEADER + ",summary"), "columns more than once: summary"),
    ("backlog.csv", b"", "the file is empty: it needs a header line and a line per case"),
    ("backlog.csv", b"\r\n,,,\r\n", "the file is empty: it needs a header line and a line per case"),
    ("backlog.txt", csv_file(row()), "not a CSV or XLSX file (the name must end in .csv or .xlsx)"),
    ("backlog.xls", b"\xd0\xcf\x11\xe0", "not a CSV or XLSX file (the name must end in .csv or .xlsx)"),
    ("backlog.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00",
     "this is not a CSV file (it looks like an old Excel .xls file): save it as .xlsx or as “CSV UTF-8 "
     "(Comma delimited)”"),
    ("backlog.csv", b"GIF89a\x01\x00\x01\x00\x80\xff\xff\xff" * 3, "this is not a CSV file: it is not text"),
    ("backlog.xlsx", csv_file(row()), "not a valid XLSX file: save it again from Excel as .xlsx"),
    ("backlog.csv", xlsx([]), "this is not a CSV file (it looks like an XLSX file named .csv)"),
], ids=["cp1252", "utf16-bom", "utf16-no-bom", "missing", "missing-xlsx", "twice", "empty",
        "blank", "txt", "xls", "xls-as-csv", "binary", "csv-as-xlsx", "xlsx-as-csv"])
def test_unreadable_files(name: str, data: bytes, expected: str) -> None:
    with pytest.raises(FileProblem) as err:
        read_table(name, data)
    assert err.value.message == expected
    assert "\n" not in err.value.message


def test_header_may_differ_in_case_and_order_and_carry_more_columns() -> None:
    header = ",".join(reversed([c.upper() for c in COLUMNS])) + ",notes"
    table = read_table("b.csv", csv_file(header=header))
    assert table.header[0] == "resolved_date" and table.rows == []
    # resolved_date is optional as a column
    table = read_table("b.csv", csv_file(header=HEADER.removesuffix(",resolved_date")))
    assert "resolved_date" not in table.header


OPTIONAL = ("source", "description", "contact", "status", "resolved_date")  # README: "required: no"


@pytest.mark.parametrize("left_out", [*([c] for c in OPTIONAL), list(OPTIONAL)], ids=[*OPTIONAL, "all"])
async def test_every_optional_column_may_be_left_out(domain: Domain, clock: Clock, left_out: list[str]) -> None:
    """What README calls optional may be missing from the header; its cells read as empty (the
    source "other", the status "new")."""
    columns = [c for c in COLUMNS if c not in left_out]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([columns, [FIELDS[c] for c in columns]])
    checked = await check(domain, clock, buf.getvalue().encode())
    assert checked.problems == []
    [case] = checked.rows
    expected = {**FIELDS, **{c: "" for c in left_out}}
    assert case.source == (expected["source"] or "other")
    assert case.status == Status(expected["status"] or "new")
    assert (case.description, case.citizen_contact) == (expected["description"], expected["contact"])


# --- every rejection with its line and reason -------------------------------------------------

REJECTIONS = [
    ({"received_date": "2026-13-01"}, "received_date: '2026-13-01' is not a date like 2026-04-30"),
    ({"received_date": "1/10/2026"}, "received_date: '1/10/2026' is not a date like 2026-04-30"),
    ({"received_date": "20261001"}, "received_date: '20261001' is not a date like 2026-04-30"),
    ({"received_date": ""}, "received_date is empty"),
    ({"received_date": "2026-11-03"}, "received_date 2026-11-03 is in the future"),
    ({"unit": "pp-xx"}, "unknown unit 'pp-xx'"),
    ({"unit": ""}, "unit is empty"),
    ({"category": "roads"}, "unknown category 'roads'"),
    ({"category": ""}, "category is empty"),
    ({"source": "pigeon"}, "unknown source 'pigeon' (one of: facebook_comment, facebook_message, "
                           "telegram, phone, walk_in, letter, other)"),
    ({"status": "merged"}, "unknown status 'merged' (one of: new, assigned, in_progress, waiting_info, "
                           "forwarded, acknowledged, resolved, closed)"),
    ({"status": "resolved"}, "status resolved needs a resolved_date"),
    ({"status": "closed", "resolved_date": "2026-09-30"}, "resolved_date is before received_date"),
    ({"status": "closed", "resolved_date": "2026-11-05"}, "resolved_date 2026-11-05 is in the future"),
    ({"status": "resolved", "resolved_date": "soon"}, "resolved_date: 'soon' is not a date like 2026-04-30"),
    ({"status": "in_progress", "resolved_date": "2026-10-05"},
     "resolved_date must be empty when the status is in_progress"),
    ({"status": "assigned", "unit": "mlm"},
     "unit 'mlm' is another institution: only the statuses forwarded and acknowledged fit it"),
    ({"status": "forwarded"}, "status forwarded needs a unit of kind external (another institution)"),
    ({"summary": ""}, "summary is empty"),
    ({"summary": "x" * 201}, "summary is longer than 200 characters"),
    ({"citizen_name": ""}, "citizen_name is empty"),
    ({"citizen_name": "Sok Dara " * 30}, "citizen_name is longer than 200 characters"),
    ({"contact": "012 345 678 " * 20}, "contact is longer than 200 characters"),
    ({"description": "y" * 3001}, "description is longer than 3000 characters"),
    ({"external_ref": ""}, "external_ref is empty"),
]


@pytest.mark.parametrize(("changes", "reason"), REJECTIONS, ids=[r for _c, r in REJECTIONS])
async def test_each_rejection(domain: Domain, clock: Clock, changes: dict[str, str], reason: str) -> None:
    data = csv_file(row(external_ref="OK-1"), row(**changes))
    checked = await check(domain, clock, data)
    assert checked.problems == [(3, reason)]
    assert [r.external_ref for r in checked.rows] == ["OK-1"]
    assert checked.problem_lines() == [f"line 3: {reason}"]
    assert checked.summary() == "checked 2 rows: 1 to import, 0 already imported, 1 rejected"


async def test_personal_data_never_in_a_problem(domain: Domain, clock: Clock) -> None:
    long_name, long_contact = "Sok Dara Very Long " * 12, "+855 12 345 678 " * 14
    data = csv_file(row(citizen_name=long_name, contact=long_contact, unit="nowhere", status="odd"))
    problems = await problems_of(domain, clock, data)
    assert len(problems) == 4
    text = "\n".join(r for _line, r in problems)
    assert "Sok" not in text and "855" not in text


async def test_a_row_with_several_problems_reports_each(domain: Domain, clock: Clock) -> None:
    data = csv_file(row(unit="pp-xx", category="roads", summary=""))
    assert await problems_of(domain, clock, data) == [
        (2, "unknown category 'roads'"), (2, "unknown unit 'pp-xx'"), (2, "summary is empty")]


async def test_unquoted_comma_makes_the_row_too_wide(domain: Domain, clock: Clock) -> None:
    data = csv_file(row() + ",extra words")
    assert await problems_of(domain, clock, data) == [
        (2, "12 fields where the header has 11 (a comma or a line break in a text that is not in quotes?)")]
    # Excel writes every row as wide as the header; a row ending in empty fields is shifted just
    # the same (its last cell, an empty resolved_date, pushed out), so it is not taken either.
    assert await problems_of(domain, clock, csv_file(row() + ",,")) == [
        (2, "13 fields where the header has 11 (a comma or a line break in a text that is not in quotes?)")]


async def test_duplicate_references_in_the_file(domain: Domain, clock: Clock) -> None:
    data = csv_file(row(), row(external_ref="R-2"), row(summary="Same ref again"), row(external_ref="R-3"))
    checked = await check(domain, clock, data)
    reason = "external_ref 'R-1' appears more than once (lines 2, 4)"
    assert checked.problems == [(2, reason), (4, reason)]
    assert [r.external_ref for r in checked.rows] == ["R-2", "R-3"]
    assert checked.rejected == 2


# --- importing ---------------------------------------------------------------------------------

async def test_import_keeps_the_date_starts_history_and_is_idempotent(domain: Domain, clock: Clock) -> None:
    data = csv_file(
        row(),
        row(external_ref="R-2", status="assigned", unit="pp-dp"),
        row(external_ref="R-3", status="closed", resolved_date="2026-10-10"),
        row(external_ref="R-4", status="acknowledged", unit="mlm"),
    )
    checked = await check(domain, clock, data)
    assert checked.problems == []
    created, skipped = await domain.cases.import_cases(SYSTEM, checked.new_rows, clock())
    assert len(created) == 4 and skipped == []
    new, assigned, closed, away = [await domain.cases.get(n) for n in created]
    assert new.received_at == datetime(2026, 10, 1, 5, 0, tzinfo=UTC) and new.created_at == clock()
    assert new.status is Status.NEW and new.unit_id is None and new.place_unit_id == await domain.unit_id("pp-dp")
    assert assigned.status is Status.ASSIGNED and assigned.unit_key == "pp-dp"
    assert closed.status is Status.CLOSED and closed.resolved_at == datetime(2026, 10, 10, 5, tzinfo=UTC)
    assert away.status is Status.ACKNOWLEDGED and away.unit_key == "mlm"
    for n in created:
        history = await domain.cases.history(n)
        assert history[0].action == Action.IMPORT and history[0].actor_name == "casebot"
        assert "imported" in history_lines(history, domain.settings.tz)[0]

    again = await check(domain, clock, data)
    assert again.summary() == "checked 4 rows: 0 to import, 4 already imported, 0 rejected"
    assert again.new_rows == []
    assert await domain.cases.import_cases(SYSTEM, again.rows, clock()) == ([], ["R-1", "R-2", "R-3", "R-4"])
    count = await domain.db.one("SELECT COUNT(*) FROM cases")
    assert count is not None and count[0] == 4


async def test_skip_invalid_imports_only_the_valid_rows(domain: Domain, clock: Clock) -> None:
    checked = await check(domain, clock, csv_file(row(), row(external_ref="R-2", unit="pp-xx")))
    created, _skipped = await domain.cases.import_cases(SYSTEM, checked.new_rows, clock())
    assert len(created) == 1 and (await domain.cases.get(created[0])).summary == "Boundary dispute"
    fixed = await check(domain, clock, csv_file(row(), row(external_ref="R-2")))
    assert fixed.summary() == "checked 2 rows: 1 to import, 1 already imported, 0 rejected"


# --- the command line -----------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for the test config: scalars, tables and arrays of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]", *(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines += ["", f"[[{k}]]", *(f"{kk} = {_toml_value(vv)}" for kk, vv in item.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "casebot.toml"
    path.write_text(to_toml(config_dict(tmp_path / "data" / "casebot.sqlite3")), encoding="utf-8")
    return path


def cases_in(tmp_path: Path) -> list[tuple[Any, ...]]:
    db = tmp_path / "data" / "casebot.sqlite3"
    if not pgtest.enabled() and not db.exists():
        return []
    conn = pgtest.connect(db)
    try:
        if "cases" not in table_names(conn):
            return []
        return [tuple(r) for r in conn.execute(
            "SELECT external_ref, status, received_at FROM cases ORDER BY id").fetchall()]
    finally:
        conn.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


# The CLI runs on the real clock: dates well in the past.
CLI_ROWS = [row(received_date="2025-01-15"),
            row(external_ref="R-2", received_date="2025-02-01", status="closed", resolved_date="2025-03-01")]


def test_cli_import_then_again(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backlog = tmp_path / "backlog.csv"
    backlog.write_bytes(csv_file(*CLI_ROWS, bom=True))
    code, out, err = run(capsys, "import", "--config", str(config_file), "--dry-run", str(backlog))
    assert (code, err) == (0, [])
    assert out == ["checked 2 rows: 2 to import, 0 already imported, 0 rejected", "dry run: nothing imported"]
    assert cases_in(tmp_path) == []

    code, out, err = run(capsys, "import", "--config", str(config_file), str(backlog))
    assert (code, err) == (0, [])
    assert out[0] == "checked 2 rows: 2 to import, 0 already imported, 0 rejected"
    assert out[1].startswith("imported 2 cases (#")
    assert cases_in(tmp_path) == [("R-1", "new", "2025-01-15T05:00:00+00:00"),
                                  ("R-2", "closed", "2025-02-01T05:00:00+00:00")]

    code, out, err = run(capsys, "import", "--config", str(config_file), str(backlog))
    assert (code, out, err) == (0, ["checked 2 rows: 0 to import, 2 already imported, 0 rejected",
                                    "nothing new to import"], [])
    assert len(cases_in(tmp_path)) == 2


def test_cli_rejected_rows(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backlog = tmp_path / "backlog.csv"
    backlog.write_bytes(csv_file(*CLI_ROWS, row(external_ref="R-3", received_date="2025-01-01", unit="pp-xx",
                                                citizen_name="")))
    expected_problems = ["line 4: unknown unit 'pp-xx'", "line 4: citizen_name is empty"]
    summary = "checked 3 rows: 2 to import, 0 already imported, 1 rejected"
    code, out, _err = run(capsys, "import", "--config", str(config_file), str(backlog))
    assert code == 1
    assert out == [*expected_problems, summary,
                   "nothing imported: correct the rejected rows, or import the others with --skip-invalid"]
    assert cases_in(tmp_path) == []

    code, out, _err = run(capsys, "import", "--config", str(config_file), "--dry-run", "--skip-invalid",
                          str(backlog))
    assert code == 1 and out == [*expected_problems, summary, "dry run: nothing imported"]
    assert cases_in(tmp_path) == []

    code, out, _err = run(capsys, "import", "--config", str(config_file), "--skip-invalid", str(backlog))
    assert code == 1 and out[:3] == [*expected_problems, summary]
    assert out[3].startswith("imported 2 cases")
    assert [c[0] for c in cases_in(tmp_path)] == ["R-1", "R-2"]
    assert not any("Sok Dara" in line for line in out)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.csv", None, "No such file or directory"),
    ("old.csv", csv_file(row(citizen_name="Fran\u00e7ois"), encoding="cp1252"),
     "the file is not UTF-8 (first at line 2): in Excel, save it as “CSV UTF-8 (Comma delimited)”"),
    ("wide.csv", csv_file(row(), header=HEADER.replace(",category", "")),
     "missing columns: category (in the header, line 1)"),
    ("notes.txt", b"hello", "not a CSV or XLSX file (the name must end in .csv or .xlsx)"),
])
def test_cli_unreadable_file(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str],
                             name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, "import", "--config", str(config_file), str(path))
    assert (code, out) == (2, [])
    assert err == [f"{path}: {message}"]
    assert cases_in(tmp_path) == []


def test_cli_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backlog = tmp_path / "backlog.csv"
    backlog.write_bytes(csv_file(*CLI_ROWS))
    code, _out, err = run(capsys, "import", "--config", str(tmp_path / "nope.toml"), str(backlog))
    assert code == 2 and len(err) == 1 and err[0].startswith("config error:")


def test_templates_have_exactly_the_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "template.csv"
    code, out, err = run(capsys, "import", "--template", str(path))
    assert (code, err) == (0, [])
    assert out == [f"wrote {path}: the header of a backlog file (11 columns)"]
    raw = path.read_bytes()
    assert raw == b"\xef\xbb\xbf" + ",".join(COLUMNS).encode() + b"\r\n"
    assert read_table("template.csv", raw).header == list(COLUMNS)

    book_path = tmp_path / "template.xlsx"
    assert run(capsys, "import", "--template", str(book_path))[0] == 0
    sheet = load_workbook(book_path).worksheets[0]
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [list(COLUMNS)]
    assert read_table("template.xlsx", book_path.read_bytes()).header == list(COLUMNS)

    code, _out, err = run(capsys, "import", "--template", str(path))  # never overwrites
    assert code == 2 and err == [f"{path}: the file exists already; give a new name"]
    code, _out, err = run(capsys, "import", "--template", str(tmp_path / "template.ods"))
    assert code == 2 and err == [f"{tmp_path / 'template.ods'}: not a CSV or XLSX file (the name must "
                                 "end in .csv or .xlsx)"]
