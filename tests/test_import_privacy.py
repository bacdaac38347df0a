"""Import problems name the column, never the citizen (issue 15, leak 3). A CSV row with an
unquoted comma in its summary shifts every later cell: it used to be answered
"line 11: unknown status '012 909 808'", the citizen's phone number. A row with more or fewer
fields than the header now gets that one sentence and nothing quoted from it; no cell of a
personal-data column is ever quoted, nor a value that holds one, a phone number or a part of the
citizen's name, wherever it was typed (CSV and XLSX, the CLI and the upload in Telegram)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from bot.i18n import use_locale
from bot.importer import COLUMNS, PERSONAL_COLUMNS, Checked, Table, read_table, validate
from tests.conftest import Clock, Domain
from tests.harness import Bot
from tests.test_import_e2e import send_file
from tests.test_importer import FIELDS, HEADER, check, run
from tests.test_importer import config_file as config_file  # the fixture
from tests.test_importer_properties import CATEGORIES, NOW, TZ, UNITS
from tests.test_scrub import NAMES, phone_numbers

SHIFTED = "12 fields where the header has 11 (a comma or a line break in a text that is not in quotes?)"


def plain(**changes: str) -> str:
    """A row as someone types it by hand: no quotes around anything."""
    values = {**FIELDS, **changes}
    return ",".join(values[c] for c in COLUMNS)


def issue_file() -> bytes:
    """Ten rows, the last with a comma in its summary that is not in quotes (line 11)."""
    rows = [plain(external_ref=f"R-{i}", citizen_name=f"Citizen {i}", contact=f"012 000 {i:03}")
            for i in range(1, 10)]
    rows.append(plain(external_ref="R-10", summary="Road flooded, school closed", citizen_name="Sok Dara",
                      contact="012 909 808", description="Call Sok Dara on 012 909 808"))
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


def lines_of(checked: Checked) -> str:
    return "\n".join(checked.problem_lines())


async def test_the_issues_file(domain: Domain, clock: Clock) -> None:
    checked = await check(domain, clock, issue_file())
    assert checked.problem_lines() == [f"line 11: {SHIFTED}"]
    assert len(checked.rows) == 9  # the others are fine
    assert "012 909 808" not in lines_of(checked) and "Sok" not in lines_of(checked)


async def test_in_khmer(domain: Domain, clock: Clock) -> None:
    """The rows are checked off the event loop, in the reader's language all the same."""
    with use_locale("km"):
        checked = await check(domain, clock, issue_file())
        assert checked.problem_lines() == [
            "បន្ទាត់ 11៖ មាន 12 ក្រឡា ខណៈដែលជួរក្បាលមាន 11 (សញ្ញាក្បៀស ឬការចុះបន្ទាត់ក្នុងអត្ថបទ"
            "ដែលមិននៅក្នុងសញ្ញាសម្រង់?)"]
        data = xlsx([cells(status="012 909 808")])
        assert (await check(domain, clock, data, "backlog.xlsx")).problem_lines() == [
            "បន្ទាត់ 2៖ មិនស្គាល់ស្ថានភាព (មិនដកស្រង់ទេ ព្រោះអាចជាទិន្នន័យផ្ទាល់ខ្លួន · ត្រូវជាមួយក្នុងចំណោម៖ "
            "new, assigned, in_progress, waiting_info, forwarded, acknowledged, resolved, closed)"]


async def test_fewer_fields_a_line_break_in_a_text_not_in_quotes(domain: Domain, clock: Clock) -> None:
    broken = plain(description="Neighbour moved the fence.\nCall me on 012 909 808").replace(
        "Sok Dara", "Keo Vanna")
    data = ("\r\n".join([HEADER, plain(), broken]) + "\r\n").encode()
    checked = await check(domain, clock, data)
    assert checked.problem_lines() == [
        "line 3: 7 fields where the header has 11 (a comma or a line break in a text that is not in quotes?)",
        "line 4: 5 fields where the header has 11 (a comma or a line break in a text that is not in quotes?)"]
    assert "909" not in lines_of(checked) and "Keo" not in lines_of(checked)
    one = ("\r\n".join([HEADER, "Sok Dara 012 909 808"]) + "\r\n").encode()
    assert (await check(domain, clock, one)).problem_lines() == [
        "line 2: 1 field where the header has 11 (a comma or a line break in a text that is not in quotes?)"]


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(COLUMNS))
    for r in rows:
        sheet.append(r)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def cells(**changes: object) -> list[object]:
    values: dict[str, object] = {**FIELDS, **changes}
    return [values[c] for c in COLUMNS]


async def test_xlsx_cells_in_the_wrong_column_are_not_quoted(domain: Domain, clock: Clock) -> None:
    """An XLSX has no shifted rows, but people paste into the wrong column."""
    data = xlsx([
        cells(external_ref="X-1", status="012 909 808"),                     # the contact, as the status
        cells(external_ref="X-2", unit="Sok Dara", category="Dara"),         # the name, a part of it
        cells(external_ref="X-3", source="dara.sok@gmail.com", received_date="+855 12 909 808"),
        cells(external_ref="X-4", status="Boundary dispute"),                # the summary
        cells(external_ref="Chan Lina", citizen_name="Chan Lina"),           # the name as the reference
        cells(external_ref="Chan Lina", citizen_name="Meas Sophea"),         # ... and in another row
        cells(external_ref="X-7", unit="pp-xx", status="later"),             # nothing personal: quoted
    ])
    checked = await check(domain, clock, data, "backlog.xlsx")
    assert checked.problems == [
        (2, "unknown status (not quoted: it may be personal data; one of: new, assigned, in_progress, "
            "waiting_info, forwarded, acknowledged, resolved, closed)"),
        (3, "unknown category (not quoted: it may be personal data)"),
        (3, "unknown unit (not quoted: it may be personal data)"),
        (4, "received_date is not a date like 2026-04-30 (not quoted: it may be personal data)"),
        (4, "unknown source (not quoted: it may be personal data; one of: facebook_comment, "
            "facebook_message, telegram, phone, walk_in, letter, other)"),
        (5, "unknown status (not quoted: it may be personal data; one of: new, assigned, in_progress, "
            "waiting_info, forwarded, acknowledged, resolved, closed)"),
        (6, "external_ref appears more than once (lines 6, 7; not quoted: it may be personal data)"),
        (7, "external_ref appears more than once (lines 6, 7; not quoted: it may be personal data)"),
        (8, "unknown unit 'pp-xx'"),
        (8, "unknown status 'later' (one of: new, assigned, in_progress, waiting_info, forwarded, "
            "acknowledged, resolved, closed)"),
    ]
    text = lines_of(checked)
    for secret in ("909", "Sok", "Dara", "dara.sok", "Boundary", "Chan", "Lina", "Sophea"):
        assert secret not in text


def test_cli_never_prints_the_citizen(tmp_path: Path, config_file: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    backlog = tmp_path / "backlog.csv"
    backlog.write_bytes(issue_file().replace(b"2026-10-01", b"2025-10-01"))  # the CLI's clock is real
    code, out, err = run(capsys, "import", "--config", str(config_file), str(backlog))
    assert code == 1 and err == []
    assert out[0] == f"line 11: {SHIFTED}"
    assert out[1] == "checked 10 rows: 9 to import, 0 already imported, 1 rejected"
    assert not any("909" in line or "Sok" in line for line in out)


async def test_telegram_upload_never_shows_the_citizen(bot: Bot) -> None:
    m = await send_file(bot, bot.wg, bot.private(bot.wg), "backlog.csv", issue_file())
    [text] = bot.texts_since(m)
    assert f"line 11: {SHIFTED}" in text
    assert "909" not in text and "Sok" not in text


# --- the property -----------------------------------------------------------------------------

SUMMARIES = st.sampled_from(["Road flooded", "Land title issued twice", "Birth certificate refused",
                             "ផ្លូវលិចទឹក", "Electricity cut every evening"])
CONTACTS = st.one_of(phone_numbers(), st.sampled_from(
    ["dara.sok@gmail.com", "Dara Sok Official", "@sophea_keo", "facebook.com/lina.chan.7"]))


@st.composite
def personal_rows(draw: st.DrawFn) -> tuple[list[dict[str, object]], list[str]]:
    """Rows whose personal data also lands in other columns, by a slip of the hand or of a
    comma: (the rows by column, every personal-data value)."""
    rows: list[dict[str, object]] = []
    for i in range(draw(st.integers(1, 4))):
        family, given_name = draw(NAMES)
        name = f"{family} {given_name}"
        contact = draw(CONTACTS)
        summary = draw(SUMMARIES)
        if draw(st.booleans()):
            summary += ", " + draw(st.sampled_from([name, contact, "school closed"]))  # not in quotes
        description = draw(st.sampled_from(["", f"My name is {name}, call me on {contact}",
                                            f"ខ្ញុំឈ្មោះ {name} ទូរស័ព្ទ {contact}"]))
        row: dict[str, object] = {**FIELDS, "external_ref": f"R-{i}", "summary": summary,
                                  "description": description, "citizen_name": name, "contact": contact}
        personal = [name, contact, summary, description, given_name, family]
        for column in ("external_ref", "received_date", "source", "category", "unit", "status",
                       "resolved_date"):
            slip = draw(st.integers(0, 6))
            if slip == 1:
                row[column] = draw(st.sampled_from(personal))
            elif slip == 2:
                row[column] = draw(st.sampled_from(["x ", "pp-", "new ", "2026-"])) + str(
                    draw(st.sampled_from(personal)))
            elif slip == 3 and rows:  # another row's, alone or with more
                row[column] = draw(st.sampled_from(["", "x "])) + str(
                    draw(st.sampled_from([rows[0]["citizen_name"], rows[0]["contact"]])))
            elif slip == 4:
                row[column] = draw(st.sampled_from(["pp-xx", "later", "pigeon", "2026-13-01", date(2026, 10, 1)]))
        rows.append(row)
    values = [str(r[c]) for r in rows for c in PERSONAL_COLUMNS]
    values += [part for r in rows for part in str(r["citizen_name"]).split()]
    return rows, [v for v in values if len(v.strip()) >= 3]


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def assert_no_personal_data(problems: list[tuple[int, str]], personal: list[str]) -> None:
    for line, reason in problems:
        shown = norm(f"line {line}: {reason}")
        for value in personal:
            assert norm(value) not in shown, (value, reason)


@given(personal_rows())
def test_no_problem_ever_holds_a_personal_data_cell_xlsx(example: tuple[list[dict[str, object]], list[str]]) -> None:
    rows, personal = example
    table = Table(list(COLUMNS), [(n, [r[c] for c in COLUMNS]) for n, r in enumerate(rows, start=2)])
    _cases, problems = validate(table, UNITS, CATEGORIES, TZ, NOW)
    assert_no_personal_data(problems, personal)


@given(personal_rows())
def test_no_problem_ever_holds_a_personal_data_cell_csv(example: tuple[list[dict[str, object]], list[str]]) -> None:
    """The same rows typed into a CSV file without quotes: commas in texts shift the cells."""
    rows, personal = example
    text = "\r\n".join([HEADER, *(",".join(str(r[c]) for c in COLUMNS) for r in rows)]) + "\r\n"
    table = read_table("backlog.csv", text.encode())
    _cases, problems = validate(table, UNITS, CATEGORIES, TZ, NOW)
    assert_no_personal_data(problems, personal)
    shifted = [line for line, reason in problems if "fields where the header has" in reason]
    for line in shifted:  # a shifted row gets that one sentence only
        assert [r for n, r in problems if n == line] == [
            next(r for n, r in problems if n == line and "fields where" in r)]
